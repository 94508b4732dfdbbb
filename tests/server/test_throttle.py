"""Key guesses are throttled per client address (issue 14, low severity)."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect

from openrealtime.server import Settings
from openrealtime.server.throttle import AuthThrottle
from tests.server.conftest import API_KEY, running_server


async def _ws_refusal(url: str, key: str) -> tuple[dict[str, object], int | None]:
    async with connect(
        url, additional_headers={"Authorization": f"Bearer {key}"}, proxy=None
    ) as ws:
        event = json.loads(await ws.recv())
        await ws.wait_closed()
    return event, ws.close_code


async def test_guesses_are_throttled_everywhere(driver: str) -> None:
    """Three wrong keys (the limit here) from one address: then REST answers
    429 with Retry-After, the WebSocket an error and close 3000, the
    inspector's login 429 — even for the right key; a missing key is no guess."""
    settings = Settings(api_keys=(API_KEY,), inspector=True, auth_max_failures=3)
    with running_server(settings, driver) as live:
        url = live.ws_url(model="gpt-realtime")
        async with httpx.AsyncClient(base_url=live.http) as client:
            for _ in range(5):  # missing keys do not count
                missing = await client.post("/v1/realtime/client_secrets", json={})
                assert missing.status_code == 401
            wrong = await client.post(
                "/v1/realtime/client_secrets",
                json={},
                headers={"Authorization": "Bearer sk-wrong-1"},
            )
            assert wrong.status_code == 401
            event, code = await _ws_refusal(url, "sk-wrong-2")
            assert event["error"]["code"] == "invalid_api_key" and code == 3000  # type: ignore[index]
            login = await client.post("/inspector/login", data={"key": "sk-wrong-3"})
            assert login.status_code == 401
            # Now throttled, whatever the key.
            limited = await client.post(
                "/v1/realtime/client_secrets",
                json={},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            assert limited.status_code == 429
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            error = limited.json()["error"]
            assert error["type"] == "requests"
            assert error["code"] == "rate_limit_exceeded"
            event, code = await _ws_refusal(url, API_KEY)
            assert event["error"]["code"] == "rate_limit_exceeded"  # type: ignore[index]
            assert code == 3000
            login = await client.post("/inspector/login", data={"key": API_KEY})
            assert login.status_code == 429


def test_window_and_memory_are_bounded() -> None:
    now = [0.0]
    throttle = AuthThrottle(
        max_failures=2, window=10.0, max_clients=100, clock=lambda: now[0]
    )
    throttle.failed("a")
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") == 10.0
    now[0] = 9.5
    assert throttle.retry_after("a") == 0.5
    now[0] = 10.0
    assert throttle.retry_after("a") == 0  # the window ended
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    off = AuthThrottle(max_failures=0)
    for _ in range(100):
        off.failed("b")
    assert off.retry_after("b") == 0 and len(off) == 0


async def test_other_addresses_are_not_blocked(driver: str) -> None:
    """One address throttled; the throttle is per address (this test's
    client is 127.0.0.1; a guess from 127.0.0.2 does not block it)."""
    settings = Settings(api_keys=(API_KEY,), auth_max_failures=1)
    with running_server(settings, driver) as live:
        live.app.state.realtime.throttle.failed("127.0.0.2")
        async with httpx.AsyncClient(base_url=live.http) as client:
            ok = await client.post(
                "/v1/realtime/client_secrets",
                json={},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
        assert ok.status_code == 200
        await asyncio.sleep(0)
