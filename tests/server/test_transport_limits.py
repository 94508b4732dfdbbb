"""Transport-level rules that hostile clients probe (issue 14, low severity):
reserved bits, the request-head cap, log lines."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from openrealtime.server import Settings
from tests.server.conftest import LiveServer, running_server
from tests.server.test_transport import RawClient


async def test_reserved_bits_close_1002(open_server: LiveServer) -> None:
    """A frame with RSV1 set and no extension negotiated fails the connection
    with 1002 (RFC 6455 §5.2), on every driver."""
    raw = await RawClient.open(open_server.ws_url(model="gpt-realtime"))
    try:
        assert (await raw.event())["type"] == "session.created"
        update = json.dumps({"type": "session.update", "session": {"type": "realtime"}})
        # Written by hand: websockets will not send reserved bits.
        frame = bytes([0x80 | 0x40 | 0x1, 0x80 | len(update)]) + b"\0" * 4
        raw.writer.write(frame + update.encode())
        code, _ = await raw.close_frame()
    finally:
        raw.close()
    assert code == 1002


async def test_request_head_cap_in_one_read() -> None:
    """picows driver: a request head over 16 KiB is refused with 431 also
    when it arrives whole in one read."""
    with running_server(Settings(), "picows") as live:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        head = (
            "GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-Pad: {'p' * 20_000}\r\n\r\n"
        )
        writer.write(head.encode())
        async with asyncio.timeout(10):
            answer = await reader.read()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_model_names_cannot_forge_log_lines(
    driver: str, caplog: pytest.LogCaptureFixture
) -> None:
    """?model= with CR/LF (allowed with '*'): the log line shows them escaped."""
    from websockets.asyncio.client import connect

    caplog.set_level(logging.INFO, logger="openrealtime")
    settings = Settings(allowed_models=("*",))
    forged = "m\r\n2026-01-01 INFO forged line\u2028x"
    with running_server(settings, driver) as live:
        async with connect(live.ws_url(model=forged), proxy=None) as ws:
            created = json.loads(await ws.recv())
            assert created["session"]["model"] == forged  # the wire keeps it
    opened = [
        r.getMessage() for r in caplog.records if "session opened" in r.getMessage()
    ]
    assert opened
    for line in opened:
        assert "\n" not in line and "\r" not in line and "\u2028" not in line
        assert "m\\r\\n2026-01-01 INFO forged line\\u2028x" in line


def test_serve_log_config_escapes_every_record() -> None:
    """serve's handlers escape CR/LF in any record, uvicorn's access log
    (a decoded path) included."""
    from openrealtime.cli import log_config
    from openrealtime.server.logsafe import SafeLogFilter

    config = log_config(Settings())
    for handler in config["handlers"].values():
        assert "safe" in handler["filters"]
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/x\n127.0.0.1 - forged", "1.1", 200),
        None,
    )
    assert SafeLogFilter().filter(access)
    assert (
        access.getMessage()
        == '127.0.0.1:1 - "GET /x\\n127.0.0.1 - forged HTTP/1.1" 200'
    )
