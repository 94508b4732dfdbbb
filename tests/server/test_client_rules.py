"""Issue 13's rules through a live server: pacing, interruptions, failures,
``?intent=``, ``x-request-id``, and the flags that configure them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from openrealtime.cli import build_parser, build_settings
from openrealtime.responders.chat import ChatResponder
from openrealtime.server import Settings
from openrealtime.server.settings import ConfigurationError
from tests.server.conftest import API_KEY, DRIVERS, LiveServer, running_server
from tests.server.test_handshake import assert_error, recv_json, recv_until, refused


BEARER = {"Authorization": f"Bearer {API_KEY}"}
#: A reply of about 3.5 s of (tone) speech at real time.
LONG = "Tell me a long story about the sea, please, with ships in it."


@pytest.fixture(scope="module", params=DRIVERS)
def paced_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """The default echo server at the default pace (real time)."""
    settings = Settings()
    assert settings.pace == 1.0
    with running_server(settings, request.param) as live:
        yield live


async def say(ws: ClientConnection, text: str) -> None:
    await ws.send(
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
    )
    await recv_until(ws, "conversation.item.done")


async def test_cancel_right_after_created_finds_it_in_progress(
    paced_server: LiveServer,
) -> None:
    """A paced reply can be cancelled; its transcript is what was streamed."""
    async with connect(paced_server.ws_url(model="gpt-realtime")) as ws:
        await recv_json(ws)
        await say(ws, LONG)
        await ws.send('{"type":"response.create"}')
        await recv_until(ws, "response.created")
        streamed = []
        cancelled = False
        while (event := await recv_json(ws))["type"] != "response.done":
            if event["type"] == "response.output_audio.delta" and not cancelled:
                await ws.send('{"type":"response.cancel"}')
                cancelled = True
            if event["type"] == "response.output_audio_transcript.delta":
                streamed.append(event["delta"])
            if event["type"] == "response.output_audio_transcript.done":
                transcript = event["transcript"]
        response = event["response"]
        assert response["status"] == "cancelled"
        assert response["status_details"]["reason"] == "client_cancelled"
        assert (
            transcript
            == "".join(streamed)
            == (response["output"][0]["content"][0]["transcript"])
        )
        assert len(transcript) < len(LONG)
        assert (await recv_json(ws))["type"] == "rate_limits.updated"


async def test_truncate_while_streaming_then_cancel(paced_server: LiveServer) -> None:
    """openai-agents' interrupt(): truncate at what was played, then cancel."""
    async with connect(paced_server.ws_url(model="gpt-realtime")) as ws:
        await recv_json(ws)
        await say(ws, LONG)
        await ws.send('{"type":"response.create"}')
        delta = await recv_until(ws, "response.output_audio.delta")
        await recv_until(ws, "response.output_audio.delta")
        await ws.send(
            json.dumps(
                {
                    "type": "conversation.item.truncate",
                    "item_id": delta["item_id"],
                    "content_index": 0,
                    "audio_end_ms": 150,
                }
            )
        )
        truncated = await recv_until(ws, "conversation.item.truncated")
        assert truncated["audio_end_ms"] == 150
        await ws.send('{"type":"response.cancel"}')
        done = await recv_until(ws, "response.done")
        (part,) = done["response"]["output"][0]["content"]
        assert part["transcript"] == LONG.split(" ")[0] + " "


async def test_failed_response_says_why(caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable LLM: failed, with status_details.error; one log line."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        responder=lambda: ChatResponder(f"http://127.0.0.1:{port}/v1", "m"), pace=0
    )
    with running_server(settings) as live:
        async with connect(live.ws_url(model="gpt-realtime")) as ws:
            await recv_json(ws)
            await say(ws, "Hello?")
            await ws.send('{"type":"response.create"}')
            done = await recv_until(ws, "response.done")
    details = done["response"]["status_details"]
    assert done["response"]["status"] == "failed"
    assert details["type"] == "failed"
    assert details["error"]["type"] == "server_error"
    assert details["error"]["code"] == "llm_unreachable"
    assert details["error"]["message"].startswith("The language model is unreachable")
    assert str(port) not in details["error"]["message"]  # the URL stays in the log
    assert "Traceback" not in caplog.text
    (line,) = [r for r in caplog.records if "responder failed" in r.getMessage()]
    assert f"127.0.0.1:{port}" in line.getMessage()


async def test_debug_logs_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        responder=lambda: ChatResponder(f"http://127.0.0.1:{port}/v1", "m"),
        pace=0,
        debug=True,
    )
    with running_server(settings) as live:
        async with connect(live.ws_url(model="gpt-realtime")) as ws:
            await recv_json(ws)
            await say(ws, "Hello?")
            await ws.send('{"type":"response.create"}')
            await recv_until(ws, "response.done")
    (line,) = [r for r in caplog.records if "responder failed" in r.getMessage()]
    assert line.exc_info is not None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("intent=&model=gpt-realtime", "Invalid intent "),
        ("intent=chat", "Invalid intent chat"),
    ],
)
async def test_unknown_intent(server: LiveServer, query: str, message: str) -> None:
    event, code, reason = await refused(
        f"{server.ws_base}/realtime?{query}", headers=BEARER
    )
    assert_error(event, "invalid_intent", message)
    assert (code, reason) == (4000, "invalid_request_error.invalid_intent")


async def test_transcription_intent_with_a_model(server: LiveServer) -> None:
    """The model of a transcription session is set in session.update."""
    event, code, reason = await refused(
        server.ws_url(intent="transcription", model="gpt-realtime"), headers=BEARER
    )
    assert event["error"]["code"] == "invalid_model"
    assert event["error"]["message"].startswith(
        'Model "gpt-realtime" cannot be used with intent=transcription.'
    )
    assert (code, reason) == (4000, "invalid_request_error.invalid_model")


async def test_realtime_intent_with_a_model(server: LiveServer) -> None:
    async with connect(
        server.ws_url(intent="realtime", model="gpt-realtime"),
        additional_headers=BEARER,
    ) as ws:
        assert (await recv_json(ws))["session"]["type"] == "realtime"


async def test_rest_answers_carry_a_request_id(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        ok = await http.post("/v1/realtime/client_secrets", headers=BEARER, json={})
        refused_ = await http.post("/v1/realtime/client_secrets", json={})
    ids = [ok.headers["x-request-id"], refused_.headers["x-request-id"]]
    assert (ok.status_code, refused_.status_code) == (200, 401)
    for value in ids:
        assert value.startswith("req_") and len(value) == 36
        int(value[4:], 16)
    assert ids[0] != ids[1]


def parse(*argv: str, environ: dict[str, str] | None = None) -> Settings:
    args = build_parser().parse_args(["serve", *argv])
    return build_settings(args, environ=environ or {})


def test_pace_and_rate_limit_flags() -> None:
    settings = parse(
        "--pace", "0", "--rate-limit-requests", "7", "--rate-limit-tokens", "900"
    )
    assert settings.pace == 0
    assert (settings.limits.rate_limit_requests, settings.limits.rate_limit_tokens) == (
        7,
        900,
    )
    env = {"OPENREALTIME_PACE": "2.5", "OPENREALTIME_RATE_LIMIT_TOKENS": "10"}
    settings = parse(environ=env)
    assert settings.pace == 2.5
    assert settings.limits.rate_limit_tokens == 10
    assert settings.limits.rate_limit_requests == 5000
    # A flag wins over its variable.
    assert parse("--pace", "1", environ=env).pace == 1


def test_settings_keep_the_limits_given() -> None:
    from openrealtime.session import Limits

    settings = Settings.from_env(
        {"OPENREALTIME_RATE_LIMIT_REQUESTS": "3"}, limits=Limits(max_items=9)
    )
    assert (settings.limits.max_items, settings.limits.rate_limit_requests) == (9, 3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENREALTIME_PACE": "fast"}, "OPENREALTIME_PACE must be a number"),
        ({"OPENREALTIME_PACE": "-1"}, "OPENREALTIME_PACE must be at least 0"),
        ({"OPENREALTIME_PACE": "nan"}, "OPENREALTIME_PACE must be at least 0"),
        (
            {"OPENREALTIME_RATE_LIMIT_TOKENS": "x"},
            "OPENREALTIME_RATE_LIMIT_TOKENS must be an integer",
        ),
    ],
)
def test_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_negative_pace() -> None:
    with pytest.raises(ConfigurationError, match="pace must be at least 0"):
        Settings(pace=-1)


def test_workers_get_the_flags() -> None:
    from openrealtime.cli import settings_env

    args = build_parser().parse_args(["serve", "--pace", "0.5"])
    assert settings_env(args)["OPENREALTIME_PACE"] == "0.5"


async def test_max_output_tokens_through_the_server(paced_server: LiveServer) -> None:
    """The engine stops the (paced) responder: incomplete, usage at the limit."""
    async with connect(paced_server.ws_url(model="gpt-realtime")) as ws:
        await recv_json(ws)
        await say(ws, LONG)
        await ws.send(
            json.dumps(
                {"type": "response.create", "response": {"max_output_tokens": 9}}
            )
        )
        done = await recv_until(ws, "response.done")
        assert (await recv_json(ws))["type"] == "rate_limits.updated"
        # The session goes on: the next response is whole.
        await ws.send(
            json.dumps(
                {"type": "response.create", "response": {"output_modalities": ["text"]}}
            )
        )
        after = await recv_until(ws, "response.done")
    response = done["response"]
    assert response["status_details"] == {
        "type": "incomplete",
        "reason": "max_output_tokens",
    }
    assert response["usage"]["output_tokens"] == 9
    assert after["response"]["status"] == "completed"
