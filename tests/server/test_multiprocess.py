"""Several server processes, one service: ephemeral keys shared through Redis.

Two ``openrealtime serve`` processes (and one with ``--workers 2``) share a
real redis-server started here. A key minted through one process opens a
session through another; when Redis goes away, minting answers 503 and the
sessions already open keep working.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.redis_server import free_port, redis_server
from tests.served import wait_up


API_KEY = "sk-multi-0123456789"


@contextlib.contextmanager
def serve(*args: str) -> Iterator[int]:
    """Run ``python -m openrealtime serve`` on a free port until the block ends."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openrealtime",
            "serve",
            "--port",
            str(port),
            "--api-key",
            API_KEY,
            "--log-level",
            "warning",
            "--speech",
            "none",
            "--vad",
            "energy",
            "--transcription",
            "none",
            *args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_up(proc, port)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def mint(port: int, instructions: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/v1/realtime/client_secrets",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"session": {"type": "realtime", "instructions": instructions}},
        timeout=10,
    )


async def open_with(port: int, key: str) -> dict[str, object]:
    """Connect with an ephemeral key; return session.created's session."""
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime",
        additional_headers={"Authorization": f"Bearer {key}"},
    ) as ws:
        event = json.loads(await ws.recv())
    assert event["type"] == "session.created", event
    session: dict[str, object] = event["session"]
    return session


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_key_minted_on_one_process_opens_on_another(redis_url: str) -> None:
    """Mint through process A, connect through process B."""
    with serve("--redis-url", redis_url) as a, serve("--redis-url", redis_url) as b:
        response = mint(a, "Minted on A.")
        assert response.status_code == 200, response.text
        key = response.json()["value"]
        session = await open_with(b, key)
        assert session["instructions"] == "Minted on A."
        # Without a shared store, B would not know the key.
    with serve() as c:
        async with websockets.connect(
            f"ws://127.0.0.1:{c}/v1/realtime?model=gpt-realtime",
            additional_headers={"Authorization": f"Bearer {key}"},
        ) as ws:
            error = json.loads(await ws.recv())
        assert error["error"]["code"] == "invalid_api_key"


async def test_workers_share_keys(redis_url: str) -> None:
    """--workers 2 with Redis: every minted key opens, whichever worker answers."""
    with serve("--workers", "2", "--redis-url", redis_url) as port:
        for i in range(6):
            response = mint(port, f"key {i}")
            assert response.status_code == 200
            session = await open_with(port, response.json()["value"])
            assert session["instructions"] == f"key {i}"


async def test_redis_going_away() -> None:
    """Redis down: mint answers 503; a session already open keeps working."""
    with redis_server() as url, serve("--redis-url", url) as port:
        key = mint(port, "before").json()["value"]
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime",
            additional_headers={"Authorization": f"Bearer {key}"},
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            # Stop Redis (the context manager's own teardown then finds it gone).
            host, redis_port = url.removeprefix("redis://").split("/")[0].split(":")
            with socket.create_connection((host, int(redis_port))) as sock:
                sock.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
                time.sleep(0.2)
            response = mint(port, "after")
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "service_unavailable"
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "instructions": "still here"},
                    }
                )
            )
            updated = json.loads(await ws.recv())
            assert updated["type"] == "session.updated"
            assert updated["session"]["instructions"] == "still here"
