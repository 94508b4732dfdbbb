"""What every HTTP request passes before a route sees it.

:class:`Guard` is an ASGI middleware around the app of
:func:`~openrealtime.server.app.create_app` (so both drivers have it: the
picows driver hands every request that is not a realtime upgrade to that
app, and checks the ``Host`` of those upgrades itself).

It answers only the ``Host`` names of its
:class:`~openrealtime.server.hosts.HostPolicy` (421 otherwise, WebSocket
upgrades too), adds security headers to every response (HTML pages get a
strict ``Content-Security-Policy`` and ``X-Frame-Options: DENY``), and
bounds request bodies, in size and in time, before any route reads them and
before any key is checked:

* a ``Content-Length`` over ``max_body_bytes`` is answered **413** at once,
  without reading the body; a body without one (chunked) is read as it
  comes and answered 413 the moment it passes the cap;
* a body not complete ``body_timeout`` seconds after the request started is
  answered **408**.

Both answers have the hosted error envelope (``{"error": {message, type,
param, code}}``) and close the connection (``Connection: close``). A route
that answers without reading the body (a 401 for a missing key) closes the
connection the same way, so an unread body cannot hold it open.

Before such an answer the guard reads and discards what the client is still
sending, for at most :data:`LINGER_SECONDS` (never keeping it): a
connection closed with unread data is reset, and the reset can make the
client lose the answer. A client still sending after that
gets the answer and a reset (nginx's ``lingering_close`` does the same).

Routes read the body through ``receive`` as usual; the guard only wraps it,
so nothing is buffered twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openrealtime.server.hosts import HostPolicy, host_not_allowed
from openrealtime.server.rest import request_id


__all__ = [
    "Guard",
    "HTML_HEADERS",
    "SECURITY_HEADERS",
    "body_too_large",
    "body_too_slow",
]

#: Headers on every response.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
#: Headers added to HTML pages (the inspector's): its own scripts, styles
#: and WebSocket only, never in a frame.
HTML_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; "
        b"img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        b"base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
)


class _Rejected(Exception):
    """A request body over a limit (raised out of the route's ``receive``)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _error(message: str, code: str) -> bytes:
    return json.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    ).encode()


def body_too_large(limit: int) -> bytes:
    """The 413 body: the request body is over ``limit`` bytes."""
    return _error(
        f"The request body is too large. The maximum is {limit} bytes.",
        "request_too_large",
    )


def body_too_slow(seconds: float) -> bytes:
    """The 408 body: the request body did not arrive within ``seconds``."""
    return _error(
        f"The request body was not received within {seconds:g} seconds.",
        "request_timeout",
    )


_CLOSE = (b"connection", b"close")
#: Longest time spent discarding an unwanted body before answering.
LINGER_SECONDS = 2.0


class Guard:
    """ASGI middleware: request body limits (see the module docstring).

    Args:
        app: the app to guard.
        max_body_bytes: the largest request body.
        body_timeout: seconds from the request's start to its body's end.
        hosts: the ``Host`` names answered (``None``: any).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout: float,
        hosts: HostPolicy | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            host = _header(scope, b"host")
            if not self.hosts.allows(host):
                await _misdirected(kind, scope, send, host or "")
                return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        length = _content_length(scope)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        received = 0
        complete = length == 0
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _Rejected(408, body_too_slow(self.body_timeout)) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _Rejected(413, body_too_large(limit))
                if not message.get("more_body", False):
                    complete = True
            return message

        async def discard() -> None:
            """Read and drop the rest of the body, within the linger bounds."""
            nonlocal complete
            until = min(deadline, loop.time() + LINGER_SECONDS)
            try:
                async with asyncio.timeout_at(until):
                    while not complete:
                        message = await receive()
                        if message["type"] != "http.request":
                            return
                        complete = not message.get("more_body", False)
            except TimeoutError:
                return

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = dict(message)
                headers = [*message.get("headers", ()), *_answer_headers()]
                if _is_html(headers):
                    headers += HTML_HEADERS
                if not complete and _has_body(scope, length):
                    # The route answered without reading the whole body:
                    # close rather than keep reading what nobody wants.
                    await discard()
                    headers.append(_CLOSE)
                message["headers"] = headers
            await send(message)

        if length is not None and length > limit:
            await discard()
            await _answer(send, 413, body_too_large(limit))
            return
        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _Rejected as rejected:
            if started:  # pragma: no cover - routes read bodies before answering
                raise
            if rejected.status == 413:
                await discard()
            await _answer(send, rejected.status, rejected.body)


def _answer_headers() -> list[tuple[bytes, bytes]]:
    # Every HTTP answer carries an x-request-id, as the hosted API's do, the
    # ones this guard writes itself included.
    return [*SECURITY_HEADERS, (b"x-request-id", request_id().encode())]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _is_html(headers: list[Any]) -> bool:
    return any(
        bytes(name).lower() == b"content-type"
        and bytes(value).lower().startswith(b"text/html")
        for name, value in headers
    )


async def _misdirected(kind: str, scope: Scope, send: Send, host: str) -> None:
    body = host_not_allowed(host)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *_answer_headers(),
    ]
    if kind == "http":
        await send(
            {
                "type": "http.response.start",
                "status": 421,
                "headers": [*headers, _CLOSE],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {"type": "websocket.http.response.start", "status": 421, "headers": headers}
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # pragma: no cover - servers without the extension answer 403
        await send({"type": "websocket.close", "code": 1008})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(scope: Scope, length: int | None) -> bool:
    if length is not None:
        return length > 0
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *_answer_headers(),
        _CLOSE,
    ]
    start: MutableMapping[str, Any] = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
