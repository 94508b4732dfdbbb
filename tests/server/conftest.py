"""A real server on a loopback port, for the tests that use real clients.

The ``server`` fixture is parametrized over transport *drivers*: ``asgi`` is
the Starlette app alone on uvicorn's fast stack (httptools, websockets'
Sans-I/O protocol); ``picows`` is what ``openrealtime serve`` runs, uvicorn
with :class:`~openrealtime.server.picows_driver.RealtimeProtocol` (realtime
WebSockets on picows, the rest on the same ASGI app). Another adapter adds
its name to :data:`DRIVERS` and a branch to :func:`running_server`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn

from openrealtime.server import SecretStore, Settings, create_app
from openrealtime.server.picows_driver import RealtimeProtocol


__all__ = ["API_KEY", "DRIVERS", "LiveServer", "running_server"]

#: The API key of the ``server`` fixture.
API_KEY = "sk-test-0123456789abcdefghij"
#: Transport adapters the server tests run against.
DRIVERS = ["asgi", "picows"]
#: Upper bound for waiting on a server thread (start or stop), in seconds.
_WAIT = 10.0


@dataclass
class LiveServer:
    """A server running on ``127.0.0.1:port``."""

    driver: str
    port: int
    settings: Settings
    app: Any

    @property
    def http(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS)."""
        return f"http{'s' if self.settings.tls else ''}://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        """The SDK's ``websocket_base_url``: ``ws://127.0.0.1:PORT/v1`` (``wss://``)."""
        return f"ws{'s' if self.settings.tls else ''}://127.0.0.1:{self.port}/v1"

    def ws_url(self, path: str = "/v1/realtime", **query: str) -> str:
        """A WebSocket URL on this server."""
        qs = f"?{urlencode(query)}" if query else ""
        return f"ws{'s' if self.settings.tls else ''}://127.0.0.1:{self.port}{path}{qs}"


@contextlib.contextmanager
def running_server(
    settings: Settings,
    driver: str = "asgi",
    *,
    secrets: SecretStore | None = None,
    protocol: type[RealtimeProtocol] = RealtimeProtocol,
    ping_timeout: float = 20.0,
    observer: Any = None,
) -> Iterator[LiveServer]:
    """Run a server with ``settings`` in a thread until the block ends.

    ``protocol`` is the picows driver's class (a subclass changes its limits);
    ``ping_timeout`` is uvicorn's ``ws_ping_timeout`` (both drivers).
    """
    if driver == "asgi":
        http: Any = "httptools"
    elif driver == "picows":
        http = protocol
    else:  # pragma: no cover - the place to add adapters
        raise ValueError(f"unknown driver {driver!r}")
    app = create_app(settings, secrets=secrets, observer=observer, warn_no_auth=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=http,
        ws="websockets-sansio",
        ws_max_size=settings.transport_max_bytes,
        ws_per_message_deflate=False,  # as `openrealtime serve` (cli.py)
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=ping_timeout,
        log_config=None,
        lifespan="off",
        **settings.ssl_options(),  # TLS when the settings name a certificate
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _WAIT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield LiveServer(driver, port, settings, app)
    finally:
        server.should_exit = True
        thread.join(_WAIT)
        sock.close()


@pytest.fixture(scope="module", params=DRIVERS)
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server that requires :data:`API_KEY`, one per module and driver."""
    with running_server(Settings(api_keys=(API_KEY,), pace=0), request.param) as live:
        yield live


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    """Each transport driver, for tests that start servers of their own."""
    name: str = request.param
    return name


@pytest.fixture(scope="module", params=DRIVERS)
def open_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server with authentication off."""
    with running_server(Settings(pace=0), request.param) as live:
        yield live
