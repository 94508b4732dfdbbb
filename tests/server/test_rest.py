"""REST endpoints: client_secrets errors, healthz, metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from websockets.asyncio.client import connect

from tests.server.conftest import API_KEY, LiveServer


BEARER = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http) as client:
        yield client


async def test_mint_default_session(http: httpx.AsyncClient) -> None:
    """An empty body mints a default realtime session for 600 s."""
    response = await http.post("/v1/realtime/client_secrets", headers=BEARER, json={})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["value", "expires_at", "session"]
    assert body["value"].startswith("ek_") and len(body["value"]) == 35
    session = body["session"]
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert session["expires_at"] == 0
    assert session["id"].startswith("sess_")


async def test_mint_on_short_path(http: httpx.AsyncClient) -> None:
    """The spec's path, /realtime/client_secrets, works too."""
    response = await http.post("/realtime/client_secrets", headers=BEARER, json={})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "code", "param", "message"),
    [
        (
            {"session": {"type": "realtime", "audio": {"output": {"voice": "x"}}}},
            "invalid_value",
            "session.audio.output.voice",
            "Invalid value: 'x'. Supported values are: 'alloy', 'ash', 'ballad', "
            "'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', and 'cedar'.",
        ),
        (
            {"session": {"type": "realtime", "voice": "alloy"}},
            "unknown_parameter",
            "session.voice",
            "Unknown parameter: 'session.voice'.",
        ),
        (
            {"ttl": 5},
            "unknown_parameter",
            "ttl",
            "Unknown parameter: 'ttl'.",
        ),
        (
            {"expires_after": {"anchor": "created_at", "seconds": 5}},
            "integer_below_min_value",
            "expires_after.seconds",
            "Invalid 'expires_after.seconds': integer below minimum value. "
            "Expected a value >= 10, but got 5 instead.",
        ),
        (
            {"session": {"instructions": "no type"}},
            "missing_required_parameter",
            "session.type",
            "Missing required parameter: 'session.type'.",
        ),
        (
            {"session": {"type": "realtime", "model": "gpt-nope"}},
            "invalid_model",
            "session.model",
            'Model "gpt-nope" is not supported in realtime mode.',
        ),
        (
            {"session": {"type": "realtime", "output_modalities": ["audio", "text"]}},
            "invalid_value",
            "session.output_modalities",
            "Invalid modalities: ['audio', 'text']. Supported combinations are: "
            "['text'] and ['audio'].",
        ),
    ],
)
async def test_bad_body(
    http: httpx.AsyncClient,
    body: object,
    code: str,
    param: str,
    message: str,
) -> None:
    """A bad body is a 400 with the same error as on the socket."""
    response = await http.post("/v1/realtime/client_secrets", headers=BEARER, json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


async def test_invalid_json(http: httpx.AsyncClient) -> None:
    """A body that is not JSON gets the REST API's parse error."""
    response = await http.post(
        "/v1/realtime/client_secrets", headers=BEARER, content=b"{not json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] is None
    assert error["message"].startswith(
        "We could not parse the JSON body of your request."
    )


async def test_missing_key_is_401(http: httpx.AsyncClient) -> None:
    """No key: 401, with "status": 401 and text/plain (WIRE_RULES §7)."""
    response = await http.post("/v1/realtime/client_secrets", json={})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    body = json.loads(response.content)
    assert body["status"] == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] is None
    assert body["error"]["message"].startswith("You didn't provide an API key.")


async def test_bad_key_is_401(http: httpx.AsyncClient) -> None:
    """A wrong key: 401 invalid_api_key, masked."""
    response = await http.post(
        "/v1/realtime/client_secrets",
        headers={"Authorization": "Bearer sk-nope-000000000000WXYZ"},
        json={},
    )
    assert response.status_code == 401
    assert json.loads(response.content) == {
        "error": {
            "message": "Incorrect API key provided: sk-nope-************WXYZ. You "
            "can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
        "status": 401,
    }


async def test_ephemeral_key_cannot_mint(http: httpx.AsyncClient) -> None:
    """An ek_ key opens sessions but cannot mint more keys."""
    minted = await http.post("/v1/realtime/client_secrets", headers=BEARER, json={})
    key = minted.json()["value"]
    response = await http.post(
        "/v1/realtime/client_secrets",
        headers={"Authorization": f"Bearer {key}"},
        json={},
    )
    assert response.status_code == 401
    assert json.loads(response.content)["error"]["code"] == "invalid_api_key"


async def test_sdk_sees_authentication_error(server: LiveServer) -> None:
    """openai-python turns the 401 into AuthenticationError with the message."""
    client = openai.AsyncOpenAI(api_key="sk-wrong", base_url=f"{server.http}/v1")
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.realtime.client_secrets.create()
    await client.close()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


async def test_sdk_sees_bad_request(server: LiveServer) -> None:
    """openai-python turns the 400 into BadRequestError with code and param."""
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=f"{server.http}/v1")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.realtime.client_secrets.create(
            session={"type": "realtime", "instructions": "x"},
            extra_body={"session": {"type": "realtime", "bogus": 1}},
        )
    await client.close()
    assert caught.value.code == "unknown_parameter"
    assert caught.value.param == "session.bogus"


async def test_healthz(http: httpx.AsyncClient) -> None:
    """GET /healthz answers 200."""
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_metrics(server: LiveServer, http: httpx.AsyncClient) -> None:
    """GET /metrics counts sessions, events by type and errors by code."""
    async with connect(
        server.ws_url(model="gpt-realtime"), additional_headers=BEARER
    ) as ws:
        await ws.recv()
        await ws.send('{"type":"nonsense"}')
        await ws.recv()
        await ws.send('{"type":"session.update","session":{"type":"realtime"}}')
        await ws.recv()
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert "# TYPE openrealtime_open_connections gauge" in lines
    assert "openrealtime_open_connections 1" in lines
    samples = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    assert int(samples["openrealtime_sessions_total"]) >= 1
    assert int(samples['openrealtime_events_received_total{type="other"}']) >= 1
    assert (
        int(samples['openrealtime_events_received_total{type="session.update"}']) >= 1
    )
    assert int(samples['openrealtime_events_sent_total{type="session.updated"}']) >= 1
    assert int(samples['openrealtime_errors_total{code="invalid_value"}']) >= 1
