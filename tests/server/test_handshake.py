"""Connection-level behaviour with a raw WebSocket client (WIRE_RULES §7).

Every refusal is one ``error`` event, then a close frame with the hosted
code and reason ("3000 for auth, 4000 for request shape", reason
``<error.type>.<error.code>``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from openrealtime.server import MemorySecretStore, Settings
from tests.server.conftest import API_KEY, LiveServer, running_server


MAX_EVENTS = 200
#: A safety net so a server that fails to answer fails the test, not hangs it.
RECV_LIMIT = 30.0
BEARER = {"Authorization": f"Bearer {API_KEY}"}


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(RECV_LIMIT):
        data = await ws.recv()
    assert isinstance(data, str), "server events are text frames"
    event: dict[str, Any] = json.loads(data)
    return event


async def recv_until(ws: ClientConnection, event_type: str) -> dict[str, Any]:
    for _ in range(MAX_EVENTS):
        event = await recv_json(ws)
        if event["type"] == event_type:
            return event
    raise AssertionError(f"no {event_type}")


async def refused(
    url: str,
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
) -> tuple[dict[str, Any], int, str]:
    """Connect, read the error event, then the close frame."""
    async with connect(
        url,
        additional_headers=headers,
        subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
    ) as ws:
        event = await recv_json(ws)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(RECV_LIMIT):
                await ws.recv()
    rcvd = closed.value.rcvd
    assert rcvd is not None
    return event, rcvd.code, rcvd.reason


def assert_error(
    event: dict[str, Any], code: str | None, message: str, param: str | None = None
) -> None:
    assert event["type"] == "error"
    assert event["event_id"].startswith("event_")
    assert event["error"] == {
        "type": "invalid_request_error",
        "code": code,
        "message": message,
        "param": param,
        "event_id": None,
    }


# --- Refusals, in the hosted order -----------------------------------------------


async def test_beta_header(server: LiveServer) -> None:
    """OpenAI-Beta: realtime=v1 is refused first, even with a good key (§4)."""
    event, code, reason = await refused(
        server.ws_url(model="gpt-realtime"),
        {**BEARER, "OpenAI-Beta": "realtime=v1"},
    )
    assert_error(
        event,
        "beta_api_shape_disabled",
        "The Realtime Beta API is no longer supported. Please use /v1/realtime "
        "for the GA API.",
    )
    assert (code, reason) == (4000, "invalid_request_error.beta_api_shape_disabled")


async def test_beta_before_auth(server: LiveServer) -> None:
    """The Beta check comes before authentication."""
    event, code, _ = await refused(
        server.ws_url(), {"OpenAI-Beta": "assistants=v2, realtime=v1"}
    )
    assert event["error"]["code"] == "beta_api_shape_disabled"
    assert code == 4000


async def test_beta_browser_subprotocol(server: LiveServer) -> None:
    """Browsers ask for Beta with the openai-beta.realtime-v1 subprotocol."""
    event, code, _ = await refused(
        server.ws_url(model="gpt-realtime"),
        subprotocols=[
            "realtime",
            f"openai-insecure-api-key.{API_KEY}",
            "openai-beta.realtime-v1",
        ],
    )
    assert event["error"]["code"] == "beta_api_shape_disabled"
    assert code == 4000


async def test_missing_key(server: LiveServer) -> None:
    """No key: code null, close 3000 with the bare error type."""
    event, code, reason = await refused(server.ws_url(model="gpt-realtime"))
    assert_error(event, None, "Missing bearer or basic authentication in header")
    assert (code, reason) == (3000, "invalid_request_error")


async def test_bad_key(server: LiveServer) -> None:
    """A wrong key is masked like OpenAI does; close 3000."""
    key = "sk-wrong-0123456789abcdefWXYZ"
    event, code, reason = await refused(
        server.ws_url(model="gpt-realtime"), {"Authorization": f"Bearer {key}"}
    )
    assert_error(
        event,
        "invalid_api_key",
        # 29 characters: the first 8 and last 4 stay, 17 are masked.
        "Incorrect API key provided: sk-wrong*****************WXYZ. You can find "
        "your API key at https://platform.openai.com/account/api-keys.",
    )
    assert (code, reason) == (3000, "invalid_request_error.invalid_api_key")


async def test_unknown_ephemeral_key(open_server: LiveServer) -> None:
    """An unknown ek_ key is refused even when authentication is off."""
    key = "ek_" + "0" * 32
    event, code, reason = await refused(
        open_server.ws_url(model="gpt-realtime"), {"Authorization": f"Bearer {key}"}
    )
    assert event["error"]["code"] == "invalid_api_key"
    assert event["error"]["message"].startswith("Incorrect API key provided: ek_00000*")
    assert (code, reason) == (3000, "invalid_request_error.invalid_api_key")


async def test_auth_before_model(server: LiveServer) -> None:
    """Authentication is checked before the model."""
    event, code, _ = await refused(server.ws_url())
    assert event["error"]["code"] is None
    assert code == 3000


async def test_missing_model(server: LiveServer) -> None:
    """No ?model=: missing_model, close 4000."""
    event, code, reason = await refused(server.ws_url(), BEARER)
    assert_error(
        event,
        "missing_model",
        "You must provide a model parameter, for example "
        "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
    )
    assert (code, reason) == (4000, "invalid_request_error.missing_model")


async def test_invalid_model(server: LiveServer) -> None:
    """A model the server does not list: invalid_model, close 4000."""
    event, code, reason = await refused(server.ws_url(model="gpt-nope"), BEARER)
    assert_error(
        event, "invalid_model", 'Model "gpt-nope" is not supported in realtime mode.'
    )
    assert (code, reason) == (4000, "invalid_request_error.invalid_model")


async def test_expired_ephemeral_key(driver: str) -> None:
    """An ek_ key past its expires_after is refused like an unknown one."""
    now = [1_000_000.0]
    secrets = MemorySecretStore(clock=lambda: now[0])
    with running_server(Settings(), driver, secrets=secrets) as live:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{live.http}/v1/realtime/client_secrets",
                json={"expires_after": {"anchor": "created_at", "seconds": 10}},
            )
        key = response.json()["value"]
        async with connect(
            live.ws_url(model="gpt-realtime"),
            additional_headers={"Authorization": f"Bearer {key}"},
        ) as ws:
            assert (await recv_json(ws))["type"] == "session.created"
        now[0] += 10
        event, code, reason = await refused(
            live.ws_url(model="gpt-realtime"), {"Authorization": f"Bearer {key}"}
        )
    assert event["error"]["code"] == "invalid_api_key"
    assert (code, reason) == (3000, "invalid_request_error.invalid_api_key")
    assert len(secrets) == 0  # purged when refused


# --- Accepted connections --------------------------------------------------------


async def test_browser_subprotocols(server: LiveServer) -> None:
    """Browsers pass the key as a subprotocol; the server picks ``realtime``."""
    async with connect(
        server.ws_url(model="gpt-realtime"),
        subprotocols=[
            Subprotocol("realtime"),
            Subprotocol(f"openai-insecure-api-key.{API_KEY}"),
        ],
    ) as ws:
        assert ws.subprotocol == "realtime"
        event = await recv_json(ws)
        assert event["type"] == "session.created"


async def test_browser_bad_key_subprotocol(server: LiveServer) -> None:
    """A wrong key in the subprotocol is refused like a wrong header."""
    event, code, _ = await refused(
        server.ws_url(model="gpt-realtime"),
        subprotocols=["realtime", "openai-insecure-api-key.nope"],
    )
    assert event["error"]["message"].startswith("Incorrect API key provided: nop*. ")
    assert code == 3000


async def test_transcription_intent_needs_no_model(server: LiveServer) -> None:
    """?intent=transcription opens a transcription session with no model."""
    async with connect(
        server.ws_url(intent="transcription"), additional_headers=BEARER
    ) as ws:
        event = await recv_json(ws)
    assert event["type"] == "session.created"
    assert event["session"]["type"] == "transcription"
    assert event["session"]["object"] == "realtime.transcription_session"


async def test_short_path_and_any_model(driver: str) -> None:
    """/realtime works too; ``*`` in allowed_models allows any model."""
    with running_server(Settings(allowed_models=("*",)), driver) as live:
        async with connect(live.ws_url("/realtime", model="my-local-model")) as ws:
            event = await recv_json(ws)
    assert event["session"]["model"] == "my-local-model"


async def test_binary_frame_is_an_error_not_fatal(server: LiveServer) -> None:
    """A binary frame gets invalid_event; the socket stays usable (§2)."""
    async with connect(
        server.ws_url(model="gpt-realtime"), additional_headers=BEARER
    ) as ws:
        await recv_until(ws, "session.created")
        await ws.send(b"\x00\x01")
        event = await recv_json(ws)
        assert_error(
            event,
            "invalid_event",
            "Expected a text WebSocket message; binary frames are not supported.",
        )
        await ws.send(
            json.dumps({"type": "session.update", "session": {"type": "realtime"}})
        )
        assert (await recv_json(ws))["type"] == "session.updated"


async def test_client_errors_keep_the_socket_open(server: LiveServer) -> None:
    """Bad events are answered, not fatal; the client's event_id is echoed."""
    async with connect(
        server.ws_url(model="gpt-realtime"), additional_headers=BEARER
    ) as ws:
        await recv_until(ws, "session.created")
        await ws.send('{"type":"session.update","event_id":"evt_1","session":'
                      '{"type":"realtime","voice":"alloy"}}')  # fmt: skip
        event = await recv_json(ws)
        assert event["error"] == {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.voice'.",
            "param": "session.voice",
            "event_id": "evt_1",
        }
        await ws.send("not json")
        assert (await recv_json(ws))["error"]["code"] == "invalid_json"
        await ws.send('{"type":"session.close"}')
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


async def test_frame_too_large(driver: str) -> None:
    """A frame over max_frame_bytes: an error event, then close 1009."""
    audio = base64.b64encode(bytes(1200)).decode()
    frame = json.dumps({"type": "input_audio_buffer.append", "audio": audio})
    with running_server(Settings(max_frame_bytes=1024), driver) as live:
        async with connect(live.ws_url(model="gpt-realtime")) as ws:
            await recv_until(ws, "session.created")
            await ws.send(frame)
            event = await recv_json(ws)
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(ws)
    assert_error(
        event,
        "message_too_large",
        f"The WebSocket message is too large: {len(frame)} bytes. The maximum is "
        "1024 bytes.",
    )
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert closed.value.rcvd.reason == "invalid_request_error.message_too_large"


async def test_frame_over_transport_limit(driver: str) -> None:
    """Past twice max_frame_bytes the transport itself closes with 1009."""
    audio = base64.b64encode(bytes(3000)).decode()
    frame = json.dumps({"type": "input_audio_buffer.append", "audio": audio})
    with running_server(Settings(max_frame_bytes=1024), driver) as live:
        async with connect(live.ws_url(model="gpt-realtime")) as ws:
            await recv_until(ws, "session.created")
            await ws.send(frame)
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_transcription_without_engine_fails_clearly(
    open_server: LiveServer,
) -> None:
    """With no transcriber configured, transcription fails with a clear message."""
    async with connect(open_server.ws_url(model="gpt-realtime")) as ws:
        await recv_until(ws, "session.created")
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {
                                "turn_detection": None,
                                "transcription": {"model": "gpt-4o-transcribe"},
                            }
                        },
                    },
                }
            )
        )
        await recv_until(ws, "session.updated")
        audio = base64.b64encode(bytes(24000 * 2 // 5)).decode()  # 200 ms
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        failed = await recv_until(
            ws, "conversation.item.input_audio_transcription.failed"
        )
    assert failed["error"]["message"] == (
        "No transcription engine is configured on this server."
    )
