"""A real server on a loopback port, for the tests that use real clients.

The ``server`` fixture is parametrized over transport *drivers*: ``asgi`` is
the Starlette app on uvicorn's fast stack (the one ``openrealtime serve``
runs). Another adapter adds its name to :data:`DRIVERS` and a branch to
:func:`running_server`.
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


__all__ = ["API_KEY", "DRIVERS", "LiveServer", "running_server"]

#: The API key of the ``server`` fixture.
API_KEY = "sk-test-0123456789abcdefghij"
#: Transport adapters the server tests run against.
DRIVERS = ["asgi"]
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
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        """The SDK's ``websocket_base_url``: ``ws://127.0.0.1:PORT/v1``."""
        return f"ws://127.0.0.1:{self.port}/v1"

    def ws_url(self, path: str = "/v1/realtime", **query: str) -> str:
        """A WebSocket URL on this server."""
        qs = f"?{urlencode(query)}" if query else ""
        return f"ws://127.0.0.1:{self.port}{path}{qs}"


@contextlib.contextmanager
def running_server(
    settings: Settings,
    driver: str = "asgi",
    *,
    secrets: SecretStore | None = None,
) -> Iterator[LiveServer]:
    """Run a server with ``settings`` in a thread until the block ends."""
    if driver != "asgi":  # pragma: no cover - the place to add adapters
        raise ValueError(f"unknown driver {driver!r}")
    app = create_app(settings, secrets=secrets, warn_no_auth=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=settings.transport_max_bytes,
        ws_ping_interval=settings.ping_interval,
        log_config=None,
        lifespan="off",
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
    with running_server(Settings(api_keys=(API_KEY,)), request.param) as live:
        yield live


@pytest.fixture(scope="module", params=DRIVERS)
def open_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server with authentication off."""
    with running_server(Settings(), request.param) as live:
        yield live
