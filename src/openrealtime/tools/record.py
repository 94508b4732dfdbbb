"""A relay that records a Realtime session as a transcript.

``openrealtime record URL -o transcript.jsonl`` listens on a local port
(``--listen``, default ``127.0.0.1:8765``). Each client that connects gets its
own connection to ``URL``, with the client's query string (``?model=...``),
``Authorization``, ``OpenAI-*`` headers and subprotocols (which carry browser
keys) passed on, and the subprotocol the upstream chose passed back. Frames go
both ways unchanged; each is also written as one JSON line::

    {"meta": {"query": "model=gpt-realtime"}}
    {"dir": "server", "event": {"type": "session.created", "event_id": ...}}
    {"dir": "client", "event": {"type": "session.update", ...}}
    {"dir": "client", "close": {"code": 1000, "reason": ""}}

Events are normalized (:mod:`openrealtime.tools.normalize`): ids, timestamps
and server audio become placeholders, so a transcript can be replayed and
compared (``openrealtime replay``). Credentials are never written.

The first connection is written to the ``-o`` path, later ones next to it
(``transcript.2.jsonl``, ...).
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from openrealtime.tools.normalize import Direction, Normalizer


__all__ = ["PASSED_HEADERS", "Recorder", "TranscriptWriter", "upstream_url"]

#: Request headers passed to the upstream (besides subprotocols).
PASSED_HEADERS = (
    "Authorization",
    "OpenAI-Beta",
    "OpenAI-Organization",
    "OpenAI-Project",
)
#: Largest message relayed (the hosted API takes 15 MiB of audio per append).
MAX_SIZE = 64 * 1024 * 1024
#: Close codes that cannot be sent in a close frame; relayed as 1000.
_UNSENDABLE = frozenset({1005, 1006, 1015})


def upstream_url(base: str, request_path: str) -> str:
    """The upstream URL for a client request: ``base`` with the client's query.

    Parameters of the client's query replace those of ``base`` with the same
    name; the path is always ``base``'s.
    """
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(parse_qsl(urlsplit(request_path).query, keep_blank_values=True))
    return urlunsplit(parts._replace(query=urlencode(query)))


class TranscriptWriter:
    """Writes one session's transcript, one JSON line a frame, normalized.

    Args:
        stream: a text stream (flushed after every line).
        query: the client's query string, kept in the ``meta`` line.
    """

    def __init__(self, stream: IO[str], query: str = "") -> None:
        self._stream = stream
        self.normalizer = Normalizer()
        self.lines = 0
        #: Whether a close was recorded (the other side's echo is not).
        self.closed = False
        self._write({"meta": {"query": query}})

    def _write(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()
        self.lines += 1

    def frame(self, direction: Direction, data: str | bytes) -> None:
        """Record one frame (text: an event; bytes: a binary frame)."""
        if isinstance(data, bytes):
            self._write(
                {"dir": direction, "binary": base64.b64encode(data).decode("ascii")}
            )
            return
        try:
            event = json.loads(data)
        except ValueError:
            self._write({"dir": direction, "text": data})
            return
        if not isinstance(event, dict):
            self._write({"dir": direction, "text": data})
            return
        self._write(
            {"dir": direction, "event": self.normalizer.event(event, direction)}
        )

    def close(self, direction: Direction, code: int | None, reason: str) -> None:
        """Record the close frame that one side sent first."""
        if self.closed:
            return
        self.closed = True
        self._write({"dir": direction, "close": {"code": code, "reason": reason}})


@dataclass
class _Pending:
    upstream: ClientConnection
    query: str


@dataclass
class Recorder:
    """The relay behind ``openrealtime record``.

    Args:
        upstream: the server to relay to (``ws://`` or ``wss://`` URL).
        output: the transcript path of the first connection.
        once: stop after the first connection ends.
        log: where progress lines go (default: standard error).
    """

    upstream: str
    output: Path
    once: bool = False
    log: Callable[[str], None] = field(
        default=lambda line: print(line, file=sys.stderr, flush=True)
    )
    sessions: int = 0
    _pending: dict[ServerConnection, _Pending] = field(default_factory=dict)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def path_for(self, n: int) -> Path:
        """The transcript path of the n-th connection (1-based)."""
        if n == 1:
            return self.output
        return self.output.with_name(f"{self.output.stem}.{n}{self.output.suffix}")

    async def run(
        self, host: str, port: int, ready: Callable[[int], None] | None = None
    ) -> None:
        """Listen until cancelled (or, with ``once``, until one session ends).

        Args:
            host: interface to listen on.
            port: port (0: any free port).
            ready: called with the port once listening.
        """
        async with serve(
            self._handle,
            host,
            port,
            process_request=self._open_upstream,
            select_subprotocol=self._select_subprotocol,
            max_size=MAX_SIZE,
            ping_interval=None,
            compression=None,
        ) as server:
            bound = _port(server)
            self.log(f"listening on ws://{host}:{bound}, relaying to {self.upstream}")
            if ready is not None:
                ready(bound)
            await self._done.wait()

    async def _open_upstream(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        headers = Headers()
        for name in PASSED_HEADERS:
            for value in request.headers.get_all(name):
                headers[name] = value
        offered = [
            Subprotocol(p.strip())
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in value.split(",")
            if p.strip()
        ]
        url = upstream_url(self.upstream, request.path)
        try:
            upstream = await connect(
                url,
                additional_headers=headers,
                subprotocols=offered or None,
                max_size=MAX_SIZE,
                ping_interval=None,
                compression=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            return connection.respond(
                exc.response.status_code, exc.response.body.decode("utf-8", "replace")
            )
        except (OSError, TimeoutError, ValueError) as exc:
            return connection.respond(502, f"cannot reach {self.upstream}: {exc}\n")
        self._pending[connection] = _Pending(upstream, urlsplit(request.path).query)
        return None

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Any
    ) -> Subprotocol | None:
        pending = self._pending.get(connection)
        return pending.upstream.subprotocol if pending is not None else None

    async def _handle(self, client: ServerConnection) -> None:
        pending = self._pending.pop(client)
        upstream = pending.upstream
        self.sessions += 1
        path = self.path_for(self.sessions)
        self.log(f"recording session {self.sessions} to {path}")
        try:
            with path.open("w", encoding="utf-8") as stream:
                writer = TranscriptWriter(stream, pending.query)
                await _relay(client, upstream, writer)
            self.log(f"session {self.sessions}: {writer.lines} lines written")
        finally:
            await upstream.close()
            if self.once:
                self._done.set()


def _port(server: Server) -> int:
    for sock in server.sockets:
        port: int = sock.getsockname()[1]
        return port
    raise RuntimeError("the relay is not listening")  # pragma: no cover


async def _pump(
    source: ServerConnection | ClientConnection,
    sink: ServerConnection | ClientConnection,
    direction: Direction,
    writer: TranscriptWriter,
) -> None:
    try:
        async for message in source:
            writer.frame(direction, message)
            await sink.send(message)
    except ConnectionClosed:
        pass
    code = source.close_code
    reason = source.close_reason or ""
    if code is not None and code not in _UNSENDABLE:
        writer.close(direction, code, reason)
        await sink.close(code, reason)
    else:
        await sink.close()


async def _relay(
    client: ServerConnection, upstream: ClientConnection, writer: TranscriptWriter
) -> None:
    to_server = asyncio.create_task(_pump(client, upstream, "client", writer))
    to_client = asyncio.create_task(_pump(upstream, client, "server", writer))
    tasks = {to_server, to_client}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # The other side was told to close; its pump ends with that handshake
        # (bounded by the close timeout).
        await asyncio.wait(tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
