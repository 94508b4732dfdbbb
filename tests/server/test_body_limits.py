"""Request bodies are bounded in size and time before any key is checked.

Regression tests for issue 14: ``POST /v1/realtime/client_secrets`` read the
whole body, with no cap and no timeout, before checking the key (a 1 GiB
body with no key drove RSS to 2.1 GB; a slow body stayed open 150 s). Raw
sockets, so the tests control exactly what is sent and when.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from openrealtime.server import Settings
from tests.server.conftest import API_KEY, running_server


PATH = "/v1/realtime/client_secrets"
LIMIT = 20.0


async def _request(
    port: int,
    head: str,
    body_chunks: list[bytes] | tuple[()] = (),
    *,
    pause: float = 0.0,
) -> tuple[int, dict[str, str], bytes]:
    """Send a request head and body chunks while reading the answer; the
    response's status, headers and body.

    The answer is read as it comes (a server that refuses a body closes with
    it unread, and the reset that follows could discard an answer not read
    yet), and sending stops once it is in.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = bytearray()
    answered = asyncio.Event()

    async def read() -> None:
        try:
            while chunk := await reader.read(65536):
                raw.extend(chunk)
                if _complete(raw):
                    break
        except ConnectionError:
            pass
        answered.set()

    reading = asyncio.create_task(read())
    try:
        writer.write(head.encode())
        for chunk in body_chunks:
            if answered.is_set():
                break
            try:
                writer.write(chunk)
                await writer.drain()
            except ConnectionError:
                break  # the server answered and closed: what we test
            if pause:
                await asyncio.sleep(pause)
        async with asyncio.timeout(LIMIT):
            await answered.wait()
    finally:
        reading.cancel()
        writer.close()
    head_bytes, _, body = bytes(raw).partition(b"\r\n\r\n")
    status, headers = _parse_head(head_bytes)
    return status, headers, body


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def _complete(raw: bytearray) -> bool:
    """Whether a whole response (with a content-length) is in ``raw``."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return False
    _, headers = _parse_head(bytes(raw[:end]))
    return len(raw) - end - 4 >= int(headers.get("content-length", "0"))


def _head(length: int | None, *, key: bool = True, chunked: bool = False) -> str:
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1"]
    if key:
        lines.append(f"Authorization: Bearer {API_KEY}")
    lines.append("Content-Type: application/json")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return "\r\n".join(lines) + "\r\n\r\n"


def _chunked(data: bytes, size: int = 65536) -> list[bytes]:
    return [
        b"%x\r\n" % len(data[i : i + size]) + data[i : i + size] + b"\r\n"
        for i in range(0, len(data), size)
    ] + [b"0\r\n\r\n"]


def _chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _error(body: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_content_length_over_the_cap_is_413(driver: str) -> None:
    """A declared length over the cap (3 MiB at 64 KiB): 413, the body
    discarded as it comes, never kept."""
    settings = Settings(api_keys=(API_KEY,), max_body_bytes=64 * 1024)
    data = b"x" * (3 * 1024 * 1024)
    with running_server(settings, driver) as live:
        status, headers, body = await _request(
            live.port, _head(len(data)), _chunks(data)
        )
    assert status == 413
    assert headers["connection"] == "close"
    error = _error(body)
    assert error["code"] == "request_too_large"
    assert "65536 bytes" in error["message"]


async def test_chunked_body_over_the_cap_is_413(driver: str) -> None:
    """No declared length: read as it comes, 413 as soon as it passes the cap
    (3 MiB sent at a 64 KiB cap)."""
    settings = Settings(api_keys=(API_KEY,), max_body_bytes=64 * 1024)
    data = b'{"session": {"type": "realtime", "instructions": "' + b"x" * (
        3 * 1024 * 1024
    )
    with running_server(settings, driver) as live:
        status, _, body = await _request(
            live.port, _head(None, chunked=True), _chunked(data)
        )
    assert status == 413
    assert _error(body)["code"] == "request_too_large"


async def test_default_cap(driver: str) -> None:
    """The default cap (16 MiB): one byte over is refused; a body under it
    with a large config mints a key."""
    settings = Settings(api_keys=(API_KEY,))
    assert settings.max_body_bytes == 16 * 1024 * 1024
    data = b"x" * (16 * 1024 * 1024 + 1)
    with running_server(settings, driver) as live:
        status, _, body = await _request(live.port, _head(len(data)), _chunks(data))
        assert status == 413
        assert _error(body)["code"] == "request_too_large"
        instructions = "y" * (4 * 1024 * 1024)
        payload = json.dumps(
            {"session": {"type": "realtime", "instructions": instructions}}
        ).encode()
        status, _, body = await _request(live.port, _head(len(payload)), [payload])
    assert status == 200
    assert json.loads(body)["session"]["instructions"] == instructions


async def test_no_key_is_401_without_reading_the_body(driver: str) -> None:
    """Without a key the answer is the hosted 401, before the body is read,
    and the connection closes (so the unread body cannot hold it)."""
    settings = Settings(api_keys=(API_KEY,), max_body_bytes=64 * 1024)
    with running_server(settings, driver) as live:
        started = time.monotonic()
        status, headers, body = await _request(
            live.port,
            _head(None, key=False, chunked=True),
            _chunked(b"z" * (1024 * 1024), 4096),
            pause=0.02,
        )
    assert status == 401
    assert headers["connection"] == "close"
    assert json.loads(body)["status"] == 401
    # Answered within the linger bound (2 s), not after the 256 chunks' 5 s.
    assert time.monotonic() - started < 4.0


async def test_slow_body_is_408(driver: str) -> None:
    """A body that does not arrive within body_timeout: 408, connection closed."""
    settings = Settings(api_keys=(API_KEY,), body_timeout=0.5)
    with running_server(settings, driver) as live:
        started = time.monotonic()
        status, headers, body = await _request(
            live.port, _head(1000), [b'{"session":'], pause=0.0
        )
        elapsed = time.monotonic() - started
    assert status == 408
    assert headers["connection"] == "close"
    error = _error(body)
    assert error["code"] == "request_timeout"
    assert 0.4 < elapsed < 5.0
