"""The picows transport: WebSocket ``/v1/realtime`` on picows, the rest on ASGI.

``openrealtime serve`` runs this driver by default (``--driver picows``); the
ASGI app (:func:`openrealtime.server.app.create_app`) stays what one mounts in
FastAPI or Starlette, and ``--driver asgi`` serves it alone.

Why
---
Under load the ASGI stack (uvicorn's WebSocket protocol, the ASGI message
dicts, Starlette's wrappers, one ``await`` per frame each way) costs about
21 µs per request/reply exchange, more than the engine itself. picows parses
and writes frames in Cython and calls back synchronously, so a frame goes
from the socket through the engine to the socket with no task switch.

Design
------
:class:`RealtimeProtocol` is a uvicorn *HTTP protocol class*
(``uvicorn.Config(app, http=RealtimeProtocol)``): uvicorn keeps everything
it already does well, the listening sockets, signals, ``--workers``, graceful
shutdown, the date header, logging, TLS. For each new TCP connection uvicorn
builds a :class:`RealtimeProtocol`, which only buffers the request head
(the bytes up to the blank line) and then hands the transport over:

* a WebSocket upgrade (``GET`` with ``Upgrade: websocket``) of
  ``/v1/realtime`` or ``/realtime`` goes to picows's protocol
  (``transport.set_protocol(ws); ws.connection_made(transport)``, then the
  buffered bytes), whose listener is a :class:`_Session`;
* anything else (``POST /v1/realtime/client_secrets``, ``/healthz``,
  ``/metrics``, the inspector and its own WebSocket) goes to uvicorn's
  httptools protocol running the ASGI app, fed the same way.

Alternatives considered: picows alone answers only bodiless ``GET`` s
outside upgrades, so REST cannot live there; two ports would break the
hosted API's one base URL; a proxy in front would add a hop per frame; and a
listener of our own (signals, workers, shutdown) would redo uvicorn's work.
The cost of this design is one small Python object and one head parse per
connection, none per frame.

Behaviour is the ASGI path's, through the same code: :func:`negotiate`
(subprotocol ``realtime``, the hosted post-upgrade refusals with their error
frames and close codes), :class:`~openrealtime.server.connection.Connection`
(with synchronous ``write``/``write_close``: each frame is written when the
engine produces it) and :class:`~openrealtime.server.app.RealtimeServer`'s
``open``/``refuse``/``closed`` (metrics, logs, the inspector's observer).
The transport-level pieces websockets did for the ASGI path are here:
fragmented messages are reassembled, invalid UTF-8 closes 1007, a message
over ``ws_max_size`` closes 1009 (over ``max_frame_bytes`` it is an error
event, then 1009, as on ASGI), keepalive pings every ``ws_ping_interval``
seconds (up to a twentieth of it later: all sessions share one schedule,
:class:`~openrealtime.server.slots.Slots`) close 1011 without a pong within
``ws_ping_timeout``, and uvicorn's shutdown closes sessions with 1012.

Backpressure: when the socket's write buffer crosses the transport's high
water mark, the session stops reading from the client and its responders
wait in :meth:`Connection.drain`; a client that does not read for
:attr:`RealtimeProtocol.write_stall_timeout` seconds, or lets the buffer
grow past :func:`write_buffer_cap` bytes (six frame caps), is disconnected.

Frames over 8 KiB are written by this driver, header and payload in bytes it
owns, not by picows's ``send`` (whose header of such frames is a view of a
buffer it reuses: ``docs/upstream/picows-reuse.md``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import weakref
from typing import Any, ClassVar, cast
from urllib.parse import parse_qsl

from multidict import CIMultiDict  # picows' own header type
from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from openrealtime.server.app import RealtimeServer
from openrealtime.server.connection import Connection
from openrealtime.server.handshake import Rejected, select_subprotocol
from openrealtime.server.hosts import host_not_allowed
from openrealtime.server.slots import Slots


try:  # uvicorn's fastest HTTP/1.1 protocol, as `http="httptools"`
    from uvicorn.protocols.http.httptools_impl import (
        HttpToolsProtocol as _HttpProtocol,
    )
except ImportError:  # pragma: no cover - httptools is in uvicorn[standard]
    from uvicorn.protocols.http.h11_impl import (  # type: ignore[assignment]
        H11Protocol as _HttpProtocol,
    )

from uvicorn.config import Config
from uvicorn.server import ServerState


__all__ = ["REALTIME_PATHS", "RealtimeProtocol", "write_buffer_cap"]

logger = logging.getLogger("openrealtime.server")

#: The WebSocket paths served by picows (the query string aside).
REALTIME_PATHS = frozenset({b"/v1/realtime", b"/realtime"})

TEXT = WSMsgType.TEXT
BINARY = WSMsgType.BINARY
CONTINUATION = WSMsgType.CONTINUATION
CLOSE = WSMsgType.CLOSE
PONG = WSMsgType.PONG

#: picows logs through one shared adapter under its own name (it logs every
#: connection at INFO); given a Logger it would make a child Logger per
#: connection.
_PICOWS_LOG = logging.LoggerAdapter(logging.getLogger("picows.server"), {})

_HEAD_END = b"\r\n\r\n"

#: The largest payload picows 2.x copies into a frame of its own in
#: ``WSTransport.send`` (server side); above it, its header is a view of a
#: reused buffer (see :meth:`_Session._write`).
_COPIED_BY_PICOWS = 8192
_FIN_TEXT = 0x80 | 0x1
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


def _text_header(size: int) -> bytes:
    """The header of an unmasked (server) final text frame of ``size`` bytes,
    RFC 6455 §5.2, for sizes above 125."""
    if size < 65536:
        return _HEADER_16.pack(_FIN_TEXT, 126, size)
    return _HEADER_64.pack(_FIN_TEXT, 127, size)


class _Driver:
    """What the connections of one uvicorn ``Config`` share."""

    def __init__(self, config: Config, server: RealtimeServer | None) -> None:
        self.config = config
        self.server = server
        settings = server.settings if server is not None else None
        self.max_frame = settings.max_frame_bytes if settings is not None else 0
        self.max_message = config.ws_max_size
        interval = config.ws_ping_interval
        self.ping_interval = interval if interval and interval > 0 else None
        self.ping_timeout = config.ws_ping_timeout
        #: When each session sends its next ping: one schedule for all of
        #: them (a timer each was ~0.6 KiB of an idle session), in slots of
        #: a twentieth of the interval, at most 1 s.
        self.keepalive = (
            Slots(min(1.0, self.ping_interval / 20)) if self.ping_interval else None
        )


_drivers: weakref.WeakKeyDictionary[Config, _Driver] = weakref.WeakKeyDictionary()

#: Frames' worth of output the write buffer may hold: one client frame can
#: make several events as large as itself before the client can read any
#: (a response echoing a frame-sized item writes about 4.4 to 4.7 times the
#: frame: bench/bench_write_buffer.py), so six frames.
WRITE_BUFFER_FRAMES = 6
#: The least write-buffer cap, whatever the frame cap.
MIN_WRITE_BUFFER = 4 * 1024 * 1024


def write_buffer_cap(cls: type[RealtimeProtocol], max_frame_bytes: int) -> int:
    """Bytes a session's write buffer may hold while the client is not
    reading: the class's ``max_write_buffer`` if set, else
    :data:`WRITE_BUFFER_FRAMES` frame caps, at least :data:`MIN_WRITE_BUFFER`."""
    if cls.max_write_buffer is not None:
        return cls.max_write_buffer
    return max(MIN_WRITE_BUFFER, WRITE_BUFFER_FRAMES * max_frame_bytes)


def _find_server(app: Any) -> RealtimeServer | None:
    """The :class:`RealtimeServer` of a ``create_app`` app, through uvicorn's
    middleware (each keeps the next as ``.app``)."""
    for _ in range(32):
        if app is None:
            return None
        server = getattr(getattr(app, "state", None), "realtime", None)
        if isinstance(server, RealtimeServer):
            return server
        app = getattr(app, "app", None)
    return None  # pragma: no cover - a middleware loop


def _driver(config: Config) -> _Driver:
    driver = _drivers.get(config)
    if driver is None:
        server = _find_server(config.loaded_app)
        if server is None:
            logger.error(
                "RealtimeProtocol serves apps made by create_app(); this app is "
                "not one, so every request goes to the ASGI app."
            )
        driver = _drivers[config] = _Driver(config, server)
    return driver


def _head_header(head: bytes, name: bytes) -> str | None:
    """The first value of a header in a request head (``name`` lower case)."""
    for header in head.split(b"\r\n")[1:]:
        key, _, value = header.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


def _is_realtime_upgrade(head: bytes) -> bool:
    """Whether a request head is a WebSocket upgrade of a realtime path."""
    line, _, rest = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET":
        return False
    if parts[1].partition(b"?")[0] not in REALTIME_PATHS:
        return False
    for header in rest.split(b"\r\n"):
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"upgrade":
            return b"websocket" in value.lower()
    return False


class RealtimeProtocol(asyncio.Protocol):
    """uvicorn HTTP protocol class: realtime WebSockets to picows, the rest
    to uvicorn's HTTP protocol and the ASGI app (see the module docstring).

    Subclass to change the class attributes (tests use short timeouts).
    """

    #: Largest request head buffered before deciding (picows's own limit).
    max_head: ClassVar[int] = 16 * 1024
    #: Seconds a new connection may take to send its request head.
    head_timeout: ClassVar[float] = 60.0
    #: Seconds a session may stay unable to write (client not reading).
    write_stall_timeout: ClassVar[float] = 30.0
    #: Bytes a session's socket write buffer may hold while paused; ``None``:
    #: :func:`write_buffer_cap` of the frame cap (six frames, at least 4 MiB).
    max_write_buffer: ClassVar[int | None] = None
    #: Seconds to wait for the client's close frame after ours.
    close_timeout: ClassVar[float] = 10.0
    #: picows's first read buffer (its minimum); it doubles while a frame does
    #: not fit. 2 KiB holds a session.update; an idle session keeps no more.
    read_buffer_size: ClassVar[int] = 2048

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol, until the head is in --------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection and start waiting for its head."""
        # uvloop's transports do not derive from asyncio.Transport.
        self.transport = transport = cast(asyncio.Transport, transport)
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        self._timer = self.loop.call_later(self.head_timeout, transport.close)

    def data_received(self, data: bytes) -> None:
        """Buffer the head; once complete, hand the connection over."""
        buffer = self._buffer + data if self._buffer else data
        end = buffer.find(_HEAD_END)
        if end < 0 or end > self.max_head:
            # Over the cap whether it came in pieces or in one read.
            if end >= 0 or len(buffer) > self.max_head:
                self._give_up(b"431 Request Header Fields Too Large")
            else:
                self._buffer = buffer
            return
        self._buffer = b""
        driver = _driver(self.config)
        if driver.server is not None and _is_realtime_upgrade(buffer[:end]):
            hosts = driver.server.hosts
            if hosts is not None:
                host = _head_header(buffer[:end], b"host")
                if not hosts.allows(host):
                    self._give_up(
                        b"421 Misdirected Request", host_not_allowed(host or "")
                    )
                    return
            self._to_picows(driver, buffer)
        else:
            self._to_http(buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        """Gone before its head was in."""
        self._detach()

    def shutdown(self) -> None:
        """uvicorn is shutting down: drop a connection still sending its head."""
        if self.transport is not None:
            self.transport.close()

    # --- Hand-over -------------------------------------------------------------------

    def _detach(self) -> None:
        self.server_state.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _give_up(self, status: bytes, body: bytes = b"") -> None:
        assert self.transport is not None
        kind = b"content-type: application/json\r\n" if body else b""
        self.transport.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nconnection: close\r\n"
            + kind
            + b"content-length: %d\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()

    def _to_http(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._detach()
        protocol = _HttpProtocol(
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(data)

    def _to_picows(self, driver: _Driver, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._detach()
        cls = type(self)

        def route(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
            session = _Session(driver, cls, self.server_state, request, transport)
            subprotocol = select_subprotocol(session.subprotocols)
            headers = {"Sec-WebSocket-Protocol": subprotocol} if subprotocol else None
            response = WSUpgradeResponse.create_101_response(extra_headers=headers)
            return WSUpgradeResponseWithListener(response, session)

        protocol = WSProtocol(
            None,  # host and port: client side only
            None,  # path: client side only
            False,  # server side
            route,
            _PICOWS_LOG,
            True,  # disconnect when a listener callback raises
            None,  # no handshake timeout: the head is here
            False,  # our own keepalive pings (uvicorn's behaviour)
            20.0,
            20.0,
            WSAutoPingStrategy.PING_WHEN_IDLE,
            True,  # answer pings
            driver.max_message,
            None,  # extra headers: client side only
            cls.read_buffer_size,
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        view = memoryview(data)
        while view:
            buffer = protocol.get_buffer(-1)
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]


def _header_values(request: WSUpgradeRequest, name: str) -> list[str]:
    values: list[str] = []
    for value in request.headers.getall(name, ()):
        values.extend(part.strip() for part in value.split(",") if part.strip())
    return values


#: What an upgrade request or response holds once its headers are read.
_NO_HEADERS: CIMultiDict[str] = CIMultiDict()


def _forget_headers(
    request: WSUpgradeRequest, response: WSUpgradeResponse | None
) -> None:
    """Let the handshake's headers go once they are read.

    picows keeps the upgrade request and its 101 response on the transport
    (``WSTransport.request``, ``.response``) for the connection's life, and
    reads neither after the handshake. Their header names and values were
    about 2.5 KiB of each idle session (tracemalloc, 1,000 sessions). The
    empty stand-in is shared and never written: picows writes a response's
    headers only while it sends it.
    """
    request.headers = _NO_HEADERS
    if response is not None:
        response.headers = _NO_HEADERS


def _headers(request: WSUpgradeRequest) -> dict[str, str]:
    """Request headers by lower-case name; the first of repeated ones, as
    Starlette's ``Headers`` (the ASGI path's) reads them."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), value)
    return headers


class _Session(WSListener):
    """picows listener of one realtime WebSocket: a :class:`Connection` with
    synchronous writes, fed frame by frame."""

    __slots__ = (
        "_driver",
        "_cls",
        "_state",
        "_tcp",
        "_ws",
        "_request",
        "subprotocols",
        "peer",
        "address",
        "connection",
        "_opening",
        "_pending",
        "_fragments",
        "_fragment_type",
        "_close_sent",
        "_close_timer",
        "_ping_slot",
        "_pong_timer",
        "_ping_payload",
        "_ping_sent_at",
        "_stall_timer",
        "_write_paused",
        "_held",
        "_finished",
        "_max_write_buffer",
    )

    def __init__(
        self,
        driver: _Driver,
        cls: type[RealtimeProtocol],
        state: ServerState,
        request: WSUpgradeRequest,
        transport: asyncio.Transport,
    ) -> None:
        self._driver = driver
        self._cls = cls
        self._state = state
        self._tcp = transport
        self._ws: WSTransport | None = None
        self._request: WSUpgradeRequest | None = request
        self.subprotocols = _header_values(request, "Sec-WebSocket-Protocol")
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if peername else "-"
        self.address: str | None = peername[0] if peername else None
        self.connection: Connection | None = None
        self._opening: asyncio.Task[None] | None = None
        #: Frames that arrived while the session was being opened.
        self._pending: list[tuple[WSMsgType, bool, bytes]] | None = []
        self._fragments: bytearray | None = None
        self._fragment_type = TEXT
        self._close_sent = False
        self._close_timer: asyncio.TimerHandle | None = None
        #: The keepalive slot this session waits in (None: no ping due).
        self._ping_slot: int | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._ping_sent_at = 0.0
        self._stall_timer: asyncio.TimerHandle | None = None
        self._write_paused = False
        #: Client frames wait for turn detection (reading is paused).
        self._held = False
        self._finished = False
        self._max_write_buffer = write_buffer_cap(cls, driver.max_frame)

    def __repr__(self) -> str:
        return f"<picows session {self.peer}>"

    # --- picows callbacks ------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        """101 sent: check the request (§7, after the upgrade), then open."""
        self._ws = transport
        self._state.connections.add(self)  # type: ignore[arg-type]
        self._tcp.pause_reading()  # until the session is open
        self._opening = asyncio.get_running_loop().create_task(self._open())
        if self._driver.ping_interval is not None:
            self._schedule_ping(self._driver.ping_interval)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """One frame: the hot path is a whole text frame of an open session."""
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            # No extension is negotiated: RFC 6455 §5.2 says fail.
            self._fail(WSCloseCode.PROTOCOL_ERROR, "reserved bits must be 0")
            return
        connection = self.connection
        if (
            frame.msg_type is TEXT
            and frame.fin
            and connection is not None
            and self._fragments is None
        ):
            size = frame.payload_size
            if size > self._driver.max_frame:
                self._too_large(connection, size)
                return
            try:
                text = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8 text frame")
                return
            connection.receive_text(text)
            return
        msg_type = frame.msg_type
        if msg_type is CLOSE:
            self._on_close(frame)
        elif msg_type is PONG:
            self._on_pong(frame.get_payload_as_bytes())
        elif self._pending is not None:
            self._pending.append((msg_type, frame.fin, frame.get_payload_as_bytes()))
        else:
            self._frame(msg_type, frame.fin, frame.get_payload_as_bytes())

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """The TCP connection is gone: stop everything, then count it closed."""
        self._state.connections.discard(self)
        for timer in (self._close_timer, self._pong_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._pong_timer = None
        keepalive = self._driver.keepalive
        if keepalive is not None and self._ping_slot is not None:
            keepalive.discard(self, self._ping_slot)
            self._ping_slot = None
        self._stall_timer = None
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        connection = self.connection
        if connection is not None:
            connection.disconnected(1005, "")
            self._finish(connection)

    def pause_writing(self) -> None:
        """The socket's write buffer is over its high water mark."""
        self._write_paused = True
        if self.connection is not None:
            self.connection.pause_writing()
        self._update_reading()
        if self._stall_timer is None:
            self._stall_timer = asyncio.get_running_loop().call_later(
                self._cls.write_stall_timeout, self._stalled, "stopped reading"
            )

    def resume_writing(self) -> None:
        """The socket's write buffer drained below its low water mark."""
        self._write_paused = False
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if self.connection is not None:
            self.connection.resume_writing()
        self._update_reading()

    def shutdown(self) -> None:
        """uvicorn is shutting down: close 1012, as its WebSocket protocol does."""
        if self.connection is not None:
            self.connection.disconnected(1012, "")
        if self._ws is not None and not self._close_sent:
            self._close_sent = True
            self._ws.send_close(WSCloseCode.SERVICE_RESTART)
        self._tcp.close()

    # --- Opening ---------------------------------------------------------------------

    async def _open(self) -> None:
        try:
            await self._negotiate()
        finally:
            # Not kept once done: a finished task holds its coroutine, ~0.6
            # KiB per open session.
            self._opening = None

    async def _negotiate(self) -> None:
        driver = self._driver
        server = driver.server
        request = self._request
        assert server is not None and request is not None and self._ws is not None
        self._request = None
        target = request.path.decode("latin-1")
        headers = _headers(request)
        _forget_headers(request, self._ws.response)
        try:
            outcome = await server.negotiate(
                headers=headers,
                query=dict(parse_qsl(target.partition("?")[2], keep_blank_values=True)),
                subprotocols=self.subprotocols,
                address=self.address,
            )
        except Exception:
            logger.exception("connection from %s failed", self.peer)
            self._fail(WSCloseCode.INTERNAL_ERROR, "")
            return
        if self._ws.is_disconnected or self._close_sent:
            return
        if isinstance(outcome, Rejected):
            self._pending = None
            self._write(server.refuse(outcome, self.peer))
            self._send_close(outcome.code, outcome.reason)
            self._tcp.resume_reading()  # for the client's close frame
            return
        connection = server.open(
            outcome, self.peer, write=self._write, write_close=self._send_close
        )
        self.connection = connection
        connection.on_held = self._held_changed
        connection.start()
        pending, self._pending = self._pending, None
        for msg_type, fin, payload in pending or ():
            self._frame(msg_type, fin, payload)
        if self._write_paused:
            connection.pause_writing()
        self._update_reading()

    # --- Frames ----------------------------------------------------------------------

    def _frame(self, msg_type: WSMsgType, fin: bool, payload: bytes) -> None:
        """Any data frame, whole or a fragment (not the hot path)."""
        if msg_type is CONTINUATION:
            if self._fragments is None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "unexpected continuation")
                return
            self._fragments += payload
        elif self._fragments is not None:
            self._fail(WSCloseCode.PROTOCOL_ERROR, "expected a continuation")
            return
        elif not fin:
            self._fragments = bytearray(payload)
            self._fragment_type = msg_type
        if self._fragments is not None:
            if len(self._fragments) > self._driver.max_message:
                self._fail(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
                return
            if not fin:
                return
            payload, self._fragments = bytes(self._fragments), None
            msg_type = self._fragment_type
        self._message(msg_type, payload)

    def _message(self, msg_type: WSMsgType, payload: bytes) -> None:
        connection = self.connection
        if connection is None or self._close_sent:
            return
        if len(payload) > self._driver.max_frame:
            self._too_large(connection, len(payload))
        elif msg_type is TEXT:
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8 text frame")
                return
            connection.receive_text(text)
        else:
            connection.receive_binary(payload)

    def _too_large(self, connection: Connection, size: int) -> None:
        server = self._driver.server
        assert server is not None
        server.fail_too_large(connection, size)

    def _on_close(self, frame: WSFrame) -> None:
        """The client's close frame: echo it (unless it echoes ours), hang up."""
        if frame.payload_size >= 2:
            code = frame.get_close_code().value
            reason = frame.get_close_reason() or ""
        else:
            code, reason = 1005, ""
        ws = self._ws
        if ws is not None and not self._close_sent:
            self._close_sent = True
            if code == 1005:
                ws.send(CLOSE, b"")
            else:
                ws.send_close(code, reason.encode())  # type: ignore[arg-type]
        if self.connection is not None:
            self.connection.disconnected(code, reason)
        self._tcp.close()

    # --- Writing ---------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        ws = self._ws
        assert ws is not None
        if len(data) <= _COPIED_BY_PICOWS:
            # picows copies it into a frame of its own (or sends it at once).
            ws.send(TEXT, data)
        elif not (ws.is_close_frame_sent or ws.is_disconnected):
            # Larger ones picows would write as ``writelines([header, data])``
            # with ``header`` a view of a buffer it reuses for the next frame;
            # uvloop keeps that view while the socket is backed up, so the
            # frame would go out under the next frame's header (issue 14,
            # docs/upstream/picows-reuse.md). Frame it here, in bytes we own.
            self._tcp.writelines((_text_header(len(data)), data))
        if self._write_paused and (
            self._tcp.get_write_buffer_size() > self._max_write_buffer
        ):
            self._stalled("let its write buffer grow too large")

    def _send_close(self, code: int, reason: str) -> None:
        if self._close_sent or self._ws is None:
            return
        self._close_sent = True
        self._ws.send_close(code, reason.encode())  # type: ignore[arg-type]
        self._close_timer = asyncio.get_running_loop().call_later(
            self._cls.close_timeout, self._tcp.close
        )

    def _fail(self, code: WSCloseCode, reason: str) -> None:
        """A transport-level failure: close frame, then hang up."""
        if self.connection is not None:
            self.connection.disconnected(code.value, reason)
        if self._ws is not None and not self._close_sent:
            self._close_sent = True
            self._ws.send_close(code, reason.encode())
        self._tcp.close()

    def _stalled(self, what: str) -> None:
        """The client does not read what it asked for: drop it."""
        self._stall_timer = None
        session_id = (
            self.connection.session.config.id if self.connection is not None else "-"
        )
        logger.warning("%s: client %s %s; disconnecting", session_id, self.peer, what)
        if self.connection is not None:
            self.connection.disconnected(1006, "client too slow")
        self._tcp.abort()

    def _held_changed(self, held: bool) -> None:
        """Frames wait for turn detection: read no more from the socket
        until they are fed, so that a client sending faster than VAD scores
        is slowed down by TCP, not closed (``input_audio_backlog_full`` only
        past the frames one read already brought)."""
        self._held = held
        self._update_reading()

    def _update_reading(self) -> None:
        if self._tcp.is_closing():
            return
        if self._write_paused or self._pending is not None or self._held:
            self._tcp.pause_reading()
        else:
            self._tcp.resume_reading()

    # --- Keepalive -------------------------------------------------------------------

    def _schedule_ping(self, delay: float) -> None:
        keepalive = self._driver.keepalive
        assert keepalive is not None
        if self._ping_slot is not None:  # one slot at a time
            keepalive.discard(self, self._ping_slot)
        self._ping_slot = keepalive.add(self, delay)

    def on_due(self) -> None:
        """The driver's keepalive schedule: this session's ping is due."""
        self._ping_slot = None
        ws = self._ws
        if ws is None or self._close_sent or ws.is_disconnected:
            return
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        loop = asyncio.get_running_loop()
        self._ping_sent_at = loop.time()
        ws.send_ping(self._ping_payload)
        timeout = self._driver.ping_timeout
        if timeout is not None:
            self._pong_timer = loop.call_later(timeout, self._no_pong)
        elif self._driver.ping_interval is not None:
            self._schedule_ping(self._driver.ping_interval)

    def _on_pong(self, payload: bytes) -> None:
        if self._ping_payload is None or payload != self._ping_payload:
            return  # unsolicited or stale
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        interval = self._driver.ping_interval
        if interval is not None:
            rtt = asyncio.get_running_loop().time() - self._ping_sent_at
            self._schedule_ping(max(0.0, interval - rtt))

    def _no_pong(self) -> None:
        self._pong_timer = None
        self._fail(WSCloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    # --- The end ---------------------------------------------------------------------

    def _finish(self, connection: Connection) -> None:
        if self._finished:
            return
        self._finished = True
        task = asyncio.get_running_loop().create_task(self._aclose(connection))
        tasks = self._state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _aclose(self, connection: Connection) -> None:
        server = self._driver.server
        assert server is not None
        try:
            await connection.aclose()
        finally:
            server.closed(connection)
