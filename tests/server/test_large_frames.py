"""Large frames to a client whose socket is backed up, on every driver.

Regression test for frame corruption on the picows driver (issue 14): picows
2.x writes a message over 8 KiB as ``writelines([header, payload])`` where
``header`` is a view of a buffer it reuses for the next message; uvloop keeps
that view when the socket cannot take the data at once, so the frame went out
with the *next* message's header and the client's stream desynchronised.

The client here has a 4 KiB receive buffer and reads slowly, so the server's
writes back up; every frame must parse and every event must arrive whole.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from openrealtime.server import Settings
from tests.server.conftest import running_server


#: Safety net: a desynchronised stream may hang instead of failing.
LIMIT = 60.0
TEXT = "0123456789abcdefghij" * 30_000  # 600,000 characters


async def _open(url: str) -> tuple[socket.socket, ClientProtocol, list[Any]]:
    uri = parse_uri(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Before connect, so the window the server sees is small from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (uri.host, uri.port))
    protocol = ClientProtocol(uri, max_size=None)
    protocol.send_request(protocol.connect())
    await _flush(sock, protocol)
    while True:
        await _receive(sock, protocol)
        events = protocol.events_received()
        if events:
            response = events[0]
            assert isinstance(response, Response) and response.status_code == 101
            return sock, protocol, events[1:]


async def _flush(sock: socket.socket, protocol: ClientProtocol) -> None:
    loop = asyncio.get_running_loop()
    for data in protocol.data_to_send():
        if data:
            await loop.sock_sendall(sock, data)


async def _receive(sock: socket.socket, protocol: ClientProtocol) -> None:
    loop = asyncio.get_running_loop()
    data = await loop.sock_recv(sock, 4096)
    if data:
        protocol.receive_data(data)
    else:
        protocol.receive_eof()
    # A frame that does not parse fails the connection: websockets records
    # the reason and sends a close frame of its own.
    assert protocol.parser_exc is None, protocol.parser_exc


async def _events_until_done(
    sock: socket.socket, protocol: ClientProtocol, early: list[Any]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    reads = 0
    frames = early
    while True:
        for frame in frames:
            assert isinstance(frame, Frame)
            if frame.opcode in (Opcode.PING, Opcode.PONG):
                continue
            assert frame.opcode is Opcode.TEXT, frame
            event = json.loads(bytes(frame.data))
            events.append(event)
            if event["type"] == "response.done":
                return events
        await _flush(sock, protocol)
        await _receive(sock, protocol)
        frames = protocol.events_received()
        reads += 1
        if reads % 8 == 0:
            await asyncio.sleep(0.001)  # a slow reader


async def test_large_frames_to_a_backed_up_client(driver: str) -> None:
    """A 600,000-character item and its echo reach a slow, small-window
    client as well-formed frames, in order, each event whole."""
    with running_server(Settings(), driver) as live:
        sock, protocol, early = await _open(live.ws_url(model="gpt-realtime"))
        try:
            async with asyncio.timeout(LIMIT):
                item = {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": TEXT}],
                    },
                }
                protocol.send_text(json.dumps(item).encode())
                protocol.send_text(
                    json.dumps(
                        {
                            "type": "response.create",
                            "response": {"output_modalities": ["text"]},
                        }
                    ).encode()
                )
                await _flush(sock, protocol)
                events = await _events_until_done(sock, protocol, early)
        finally:
            sock.close()
    types = [event["type"] for event in events]
    assert types[0] == "session.created"
    added = [e for e in events if e["type"] == "conversation.item.added"]
    assert added[0]["item"]["content"][0]["text"] == TEXT
    done = events[-1]
    assert done["response"]["status"] == "completed", done
    # Every event of the response arrived, none twice: the echo's deltas add
    # up to its final text.
    deltas = "".join(
        e["delta"] for e in events if e["type"] == "response.output_text.delta"
    )
    final = [e["text"] for e in events if e["type"] == "response.output_text.done"]
    assert final and deltas == final[0]
    assert len({e["event_id"] for e in events}) == len(events)
