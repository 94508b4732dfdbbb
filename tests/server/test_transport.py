"""What the transport does below the events, on every driver.

Each test runs on both drivers (``asgi``: uvicorn's websockets protocol;
``picows``: :mod:`openrealtime.server.picows_driver`), so the picows path is
held to what the ASGI path does: fragmented messages, invalid UTF-8, close
codes, keepalive pings and their timeout, shutdown, and clean-up. The slow
reader test is picows's own (uvicorn's protocol does not bound its buffer).

A raw client built on websockets' Sans-I/O ``ClientProtocol`` shows the
frames themselves (pings included) and can leave pings unanswered.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from openrealtime.server import Settings
from openrealtime.server.picows_driver import RealtimeProtocol
from tests.server.conftest import LiveServer, running_server


#: A safety net so a server that fails to answer fails the test, not hangs it.
LIMIT = 10.0
UPDATE = json.dumps({"type": "session.update", "session": {"type": "realtime"}})


class RawClient:
    """A WebSocket client that shows every frame and answers pings only when
    told to."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: ClientProtocol,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.answer_pings = True
        self.pings = 0
        self._events: list[Any] = []

    @classmethod
    async def open(cls, url: str) -> RawClient:
        uri = parse_uri(url)
        reader, writer = await asyncio.open_connection(uri.host, uri.port)
        protocol = ClientProtocol(uri, max_size=None)
        client = cls(reader, writer, protocol)
        protocol.send_request(protocol.connect())
        await client.flush()
        while not client._events:
            await client._read()
        response = client._events.pop(0)
        assert isinstance(response, Response) and response.status_code == 101
        return client

    async def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
        await self.writer.drain()

    async def _read(self) -> None:
        async with asyncio.timeout(LIMIT):
            data = await self.reader.read(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._events.extend(self.protocol.events_received())

    async def frame(self) -> Frame:
        """The next frame that is not a ping (pings are counted)."""
        while True:
            if not self._events:
                await self._read()
                continue
            event = self._events.pop(0)
            assert isinstance(event, Frame)
            if event.opcode is Opcode.PING:
                self.pings += 1
                if self.answer_pings:
                    await self.flush()
                else:
                    self.protocol.data_to_send()  # drop the pong
                continue
            await self.flush()  # our echo of a close frame, if any
            return event

    async def event(self) -> dict[str, Any]:
        frame = await self.frame()
        assert frame.opcode is Opcode.TEXT, frame
        result: dict[str, Any] = json.loads(bytes(frame.data))
        return result

    async def close_frame(self) -> tuple[int, str]:
        """Read up to the server's close frame; its code and reason."""
        while True:
            frame = await self.frame()
            if frame.opcode is Opcode.CLOSE:
                close = Close.parse(frame.data)
                return close.code, close.reason

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def raw(open_server: LiveServer) -> AsyncIterator[RawClient]:
    client = await RawClient.open(open_server.ws_url(model="gpt-realtime"))
    assert (await client.event())["type"] == "session.created"
    yield client
    client.close()


async def wait_for(condition: Any, what: str) -> None:
    for _ in range(int(LIMIT / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def open_connections(server: LiveServer) -> int:
    count: int = server.app.state.realtime.metrics.open_connections
    return count


async def test_fragmented_message(raw: RawClient) -> None:
    """A text message in three fragments is one event."""
    data = UPDATE.encode()
    raw.protocol.send_text(data[:10], fin=False)
    raw.protocol.send_continuation(data[10:20], fin=False)
    raw.protocol.send_continuation(data[20:], fin=True)
    await raw.flush()
    assert (await raw.event())["type"] == "session.updated"


async def test_binary_fragments_are_one_error(raw: RawClient) -> None:
    """A fragmented binary message: one invalid_event, the socket stays open."""
    raw.protocol.send_binary(b"\x00\x01", fin=False)
    raw.protocol.send_continuation(b"\x02", fin=True)
    raw.protocol.send_text(UPDATE.encode())
    await raw.flush()
    assert (await raw.event())["error"]["code"] == "invalid_event"
    assert (await raw.event())["type"] == "session.updated"


async def test_fragments_over_max_frame_bytes() -> None:
    """The size limit applies to the whole message, not each fragment."""
    data = json.dumps(
        {"type": "input_audio_buffer.append", "audio": "A" * 1600}
    ).encode()
    for driver in ("asgi", "picows"):
        with running_server(Settings(max_frame_bytes=1024), driver) as live:
            raw = await RawClient.open(live.ws_url(model="gpt-realtime"))
            assert (await raw.event())["type"] == "session.created"
            for start in range(0, len(data), 500):
                chunk = data[start : start + 500]
                fin = start + 500 >= len(data)
                if start == 0:
                    raw.protocol.send_text(chunk, fin=fin)
                else:
                    raw.protocol.send_continuation(chunk, fin=fin)
            await raw.flush()
            event = await raw.event()
            assert event["error"]["code"] == "message_too_large", driver
            assert (await raw.close_frame()) == (
                1009,
                "invalid_request_error.message_too_large",
            )
            raw.close()


async def test_invalid_utf8_closes_1007(raw: RawClient) -> None:
    """A text frame that is not UTF-8 fails the connection (RFC 6455 §8.1)."""
    raw.protocol.send_text(b'{"type":"\xff"}')
    await raw.flush()
    code, _ = await raw.close_frame()
    assert code == 1007


async def test_client_close_is_echoed_and_cleaned_up(driver: str) -> None:
    """The client's close code comes back; the session is counted closed.

    A server of its own: on the module's shared one, an earlier test's
    session could still be closing, so the count moved under this one.
    """
    with running_server(Settings(pace=0), driver) as live:
        async with connect(live.ws_url(model="gpt-realtime")) as ws:
            await ws.recv()
            await wait_for(lambda: open_connections(live) == 1, "open")
            await ws.close(4321, "bye")
        assert ws.close_code == 4321
        assert ws.close_reason == "bye"
        await wait_for(lambda: open_connections(live) == 0, "clean-up")


async def test_session_close_closes_1000(raw: RawClient) -> None:
    """session.close: the server's close frame, 1000 (the engine's Close)."""
    raw.protocol.send_text(b'{"type":"session.close"}')
    await raw.flush()
    assert (await raw.close_frame())[0] == 1000


@pytest.mark.parametrize("driver_name", ["asgi", "picows"])
async def test_keepalive_pings_and_timeout(driver_name: str) -> None:
    """Pings every ping_interval; no pong within the timeout: close 1011."""
    settings = Settings(ping_interval=0.2)
    with running_server(settings, driver_name, ping_timeout=0.3) as live:
        raw = await RawClient.open(live.ws_url(model="gpt-realtime"))
        assert (await raw.event())["type"] == "session.created"
        # Answered pings keep the session open.
        raw.protocol.send_text(UPDATE.encode())
        await raw.flush()
        assert (await raw.event())["type"] == "session.updated"
        while raw.pings < 3:
            async with asyncio.timeout(LIMIT):
                await asyncio.sleep(0.05)
                raw.protocol.send_text(UPDATE.encode())
                await raw.flush()
                assert (await raw.event())["type"] == "session.updated"
        # Unanswered, the next one ends it.
        raw.answer_pings = False
        assert await raw.close_frame() == (1011, "keepalive ping timeout")
        raw.close()
        await wait_for(lambda: open_connections(live) == 0, "clean-up")


async def test_shutdown_closes_1012(driver: str) -> None:
    """The server stopping closes sessions with 1012 (service restart)."""
    with running_server(Settings(), driver) as live:
        raw = await RawClient.open(live.ws_url(model="gpt-realtime"))
        assert (await raw.event())["type"] == "session.created"
    # Leaving the block stopped the server; its close frame waits for us.
    assert (await raw.close_frame())[0] == 1012
    raw.close()


class _Impatient(RealtimeProtocol):
    write_stall_timeout = 0.3


async def test_slow_reader_is_disconnected(caplog: pytest.LogCaptureFixture) -> None:
    """picows: a client that stops reading is dropped; memory stays bounded.

    Once the socket's write buffer is over its high water mark the server
    stops reading the client's frames (so stops producing replies) and, after
    write_stall_timeout, disconnects it.
    """
    caplog.set_level(logging.WARNING, logger="openrealtime.server")
    with running_server(Settings(), "picows", protocol=_Impatient) as live:
        async with connect(
            live.ws_url(model="gpt-realtime"), max_queue=1, ping_interval=None
        ) as ws:
            await ws.recv()
            sent = 0
            with pytest.raises((TimeoutError, ConnectionClosed)):
                # Never read: replies pile up until the server stops reading,
                # then our own sends block, then it hangs up.
                async with asyncio.timeout(LIMIT):
                    while True:
                        await ws.send(UPDATE)
                        sent += 1
            assert sent > 100
            await wait_for(lambda: open_connections(live) == 0, "disconnect")
    assert "stopped reading; disconnecting" in caplog.text


async def test_picows_lets_the_handshake_headers_go() -> None:
    """picows: once a session is open, the upgrade request's and the 101
    response's headers are no longer held (picows keeps both objects on the
    transport for the connection's life; their headers were ~2.5 KiB of each
    idle session). The session still answers, and a second one opens."""
    import gc

    from openrealtime.server.picows_driver import _Session

    with running_server(Settings(pace=0), "picows") as live:
        url = live.ws_url(model="gpt-realtime")
        async with connect(url, additional_headers={"X-Big": "x" * 4000}) as ws:
            await ws.recv()  # session.created: the session is open
            await ws.send(UPDATE)
            assert json.loads(await ws.recv())["type"] == "session.updated"
            # type(), not isinstance(): a dead weakref.proxy raises on the latter.
            sessions = [o for o in gc.get_objects() if type(o) is _Session]
            live_ones = [s for s in sessions if s.connection is not None]
            assert live_ones
            for session in live_ones:
                transport = session._ws
                assert transport is not None
                assert len(transport.request.headers) == 0
                assert len(transport.response.headers) == 0
            async with connect(url) as second:
                assert json.loads(await second.recv())["type"] == "session.created"


async def test_a_sessions_responder_is_made_at_its_first_response(driver: str) -> None:
    """An idle session holds no responder (a speaking one with its lane and
    pacing was ~0.6 KiB of each); the first response.create makes it, once."""
    from openrealtime.responders.echo import EchoResponder

    made: list[EchoResponder] = []

    def factory() -> EchoResponder:
        made.append(EchoResponder())
        return made[-1]

    text = {"type": "realtime", "output_modalities": ["text"]}
    with running_server(Settings(responder=factory, pace=0), driver) as live:
        async with connect(live.ws_url(model="gpt-realtime")) as ws:
            await ws.recv()  # session.created
            await ws.send(json.dumps({"type": "session.update", "session": text}))
            assert json.loads(await ws.recv())["type"] == "session.updated"
            assert made == []
            for _ in range(2):
                await ws.send(json.dumps({"type": "response.create"}))
                while (event := json.loads(await ws.recv()))["type"] != "response.done":
                    pass
                assert event["response"]["status"] == "completed"
            assert len(made) == 1
