"""Host names, security headers and the metrics key (issue 14, low severity).

No Host check let a DNS-rebinding page reach an auth-off server and its
inspector; the inspector's pages had no CSP, X-Frame-Options or nosniff;
``/metrics`` could not be protected.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect

from openrealtime.server import Settings
from openrealtime.server.hosts import HostPolicy
from tests.server.conftest import API_KEY, running_server


async def _upgrade(port: int, host: str) -> bytes:
    """A realtime WebSocket upgrade with this Host; the answer's head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: {host}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    return head


def _get(port: int, path: str, host: str, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        return client.get(path, headers={"Host": host, **headers})


async def test_rebinding_names_get_421_when_auth_is_off(driver: str) -> None:
    """Auth off, no --allowed-host: a foreign name gets 421 on REST, the
    inspector and the realtime WebSocket; the bind address' names work."""
    settings = Settings(inspector=True)
    with running_server(settings, driver) as live:
        for path in ("/healthz", "/inspector", "/inspector/api/sessions"):
            refused = await asyncio.to_thread(_get, live.port, path, "evil.example")
            assert refused.status_code == 421, path
            assert refused.json()["error"]["code"] == "host_not_allowed"
            for host in (f"127.0.0.1:{live.port}", "localhost", "[::1]:1"):
                ok = await asyncio.to_thread(_get, live.port, path, host)
                assert ok.status_code == 200, (path, host)
        assert (await _upgrade(live.port, "evil.example")).startswith(b"HTTP/1.1 421 ")
        assert (await _upgrade(live.port, "localhost:1")).startswith(b"HTTP/1.1 101 ")
        async with connect(live.ws_url(model="gpt-realtime"), proxy=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"


async def test_allowed_host_list(driver: str) -> None:
    """--allowed-host: exactly the names listed (.name for subdomains)."""
    settings = Settings(
        api_keys=(API_KEY,), allowed_hosts=("api.example.com", ".corp.example")
    )
    with running_server(settings, driver) as live:
        for host, status in [
            ("api.example.com", 200),
            ("API.example.com:443", 200),
            ("corp.example", 200),
            ("a.b.corp.example", 200),
            ("example.com", 421),
            ("127.0.0.1", 421),  # not listed
        ]:
            got = await asyncio.to_thread(_get, live.port, "/healthz", host)
            assert got.status_code == status, host


def test_default_policy() -> None:
    """With keys and no list: any name; '*' always any."""
    assert HostPolicy((), auth_enabled=True, bind_host="0.0.0.0").allows("x.y")
    assert HostPolicy(("*",), auth_enabled=False, bind_host="h").allows("x.y")
    off = HostPolicy((), auth_enabled=False, bind_host="myhost.lan")
    assert off.allows("myhost.lan:8000") and off.allows("10.1.2.3")
    assert off.allows("app.localhost") and not off.allows("localhost.evil.com")
    assert off.allows(None)  # HTTP/1.0 without Host


async def test_security_headers_on_every_html_page(driver: str) -> None:
    settings = Settings(api_keys=(API_KEY,), inspector=True)
    with running_server(settings, driver) as live:
        login = await asyncio.to_thread(_get, live.port, "/inspector", "127.0.0.1")
        page = await asyncio.to_thread(
            _get,
            live.port,
            "/inspector",
            "127.0.0.1",
            Authorization=f"Bearer {API_KEY}",
        )
        health = await asyncio.to_thread(_get, live.port, "/healthz", "127.0.0.1")
    assert login.status_code == 401 and page.status_code == 200
    for response in (login, page):
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in health.headers


async def test_metrics_key(driver: str) -> None:
    settings = Settings(metrics_key="m-secret")
    with running_server(settings, driver) as live:
        bare = await asyncio.to_thread(_get, live.port, "/metrics", "127.0.0.1")
        wrong = await asyncio.to_thread(
            _get, live.port, "/metrics", "127.0.0.1", Authorization="Bearer nope"
        )
        right = await asyncio.to_thread(
            _get, live.port, "/metrics", "127.0.0.1", Authorization="Bearer m-secret"
        )
    assert bare.status_code == 401 and wrong.status_code == 401
    assert right.status_code == 200 and "openrealtime_" in right.text
