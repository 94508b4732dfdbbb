"""The inspector: a web page that shows what each session is doing.

``openrealtime serve --inspector`` (``Settings(inspector=True)``,
``OPENREALTIME_INSPECTOR=1``) serves ``GET /inspector``: the live and recent
sessions; for one session its effective configuration as a tree, a timeline
of its ``session.update`` events (what each changed, or the error that
rejected it) and its events both ways as they happen (a WebSocket streams
them), with audio collapsed to byte counts.

Theory of operation
-------------------
The engine does not know about it. :meth:`Inspector.observe` is the app's
``observer``: for each new session it returns a :class:`SessionRecord`, which
the connection driver calls with every frame (``<`` from the client, ``>``
to it) and, at the end, :meth:`SessionRecord.closed`. A record keeps the last
``max_events`` log entries and ``max_events`` updates; the inspector keeps
``max_sessions`` records, dropping the oldest closed ones first. With the
inspector off no observer is installed at all.

Because the driver feeds the engine and queues its output with no ``await``
in between, the frame that follows a client ``session.update`` is its answer
(``session.updated`` or ``error``): that is how each update is paired with
its outcome, without touching the engine.

Authentication: with API keys configured the page and its API need one.
Browsers send no headers on a page load, so the key is accepted as
``?key=`` (the page then sets a cookie and redirects to drop the key from the
address bar, and the key is removed from the request before the access log
sees it), through a login form, or as ``Authorization: Bearer`` (scripts).
The cookie holds an HMAC of the key under a per-process secret, never the key.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import html
import json
import logging
import os
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import msgspec
from starlette.requests import HTTPConnection, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from openrealtime.server.metrics import client_event_type, server_event_type
from openrealtime.server.throttle import AuthThrottle
from openrealtime.session import Session
from openrealtime.tools.diff import diff


__all__ = [
    "AUDIO_EVENTS",
    "COOKIE",
    "Inspector",
    "SessionRecord",
    "add_arguments",
    "off_routes",
    "settings_env",
    "settings_overrides",
]

logger = logging.getLogger("openrealtime.server")

Direction = Literal["<", ">"]

#: Events whose payload is audio: logged as "N bytes audio", merged when
#: consecutive.
AUDIO_EVENTS = frozenset(
    {
        "input_audio_buffer.append",
        "session.input_audio_buffer.append",
        "response.output_audio.delta",
    }
)
#: The cookie that carries an inspector login.
COOKIE = "openrealtime_inspector"
#: Messages queued for one page before it is dropped as too slow (it
#: reconnects and starts again from a snapshot).
SUBSCRIBER_QUEUE = 2000
#: WebSocket close code for a page that fell behind ("try again later").
CLOSE_TOO_SLOW = 1013

_STATIC = {
    "inspector.js": "text/javascript; charset=utf-8",
    "inspector.css": "text/css; charset=utf-8",
}


class _Audio(msgspec.Struct):
    audio: str = ""
    delta: str = ""


_audio_decoder = msgspec.json.Decoder(_Audio)


def _b64_size(data: str) -> int:
    padding = len(data) - len(data.rstrip("="))
    return max(0, len(data) * 3 // 4 - padding)


def _static(name: str) -> str:
    return (resources.files("openrealtime.server") / "static" / name).read_text(
        encoding="utf-8"
    )


class _Subscriber:
    """One page following one session: a bounded queue of JSON messages."""

    def __init__(self) -> None:
        self.queue: collections.deque[str] = collections.deque()
        self.ready = asyncio.Event()
        self.overflowed = False

    def put(self, message: str) -> None:
        if self.overflowed:
            return
        if len(self.queue) >= SUBSCRIBER_QUEUE:
            self.overflowed = True
            self.queue.clear()
        else:
            self.queue.append(message)
        self.ready.set()


class SessionRecord:
    """What the inspector knows of one session; the connection's observer.

    Args:
        session: the engine (read once, for its id, kind and model).
        max_events: log entries and updates kept.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        session: Session,
        *,
        max_events: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = session.config
        self.id = config.id
        self.kind = session.kind
        self.model: str | None = getattr(config, "model", None)
        self._clock = clock
        self.opened = clock()
        self.closed_at: float | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.counts = {"<": 0, ">": 0}
        self.config: Any = None
        self._max_events = max_events
        self.events: collections.deque[dict[str, Any]] = collections.deque()
        self.updates: collections.deque[dict[str, Any]] = collections.deque()
        #: Bytes kept (an estimate: the frames' sizes), and per entry.
        self.bytes = 0
        self._event_sizes: collections.deque[int] = collections.deque()
        self._update_sizes: collections.deque[int] = collections.deque()
        self._config_size = 0
        #: Told how many bytes were added or freed (the inspector's budget).
        self.on_resize: Callable[[int], None] | None = None
        self._seq = 0
        self._pending: dict[str, Any] | None = None
        self._subscribers: set[_Subscriber] = set()
        self._failed = False

    @property
    def live(self) -> bool:
        """Whether the connection is still open."""
        return self.closed_at is None

    # --- The observer ----------------------------------------------------------------

    def __call__(self, direction: Direction, data: bytes) -> None:
        """Record one frame (called by the connection driver, in order).

        It never raises: what it cannot show is logged once per session.
        """
        try:
            self._record(direction, data)
        except Exception:
            if not self._failed:
                self._failed = True
                logger.warning(
                    "%s: the inspector could not record a frame", self.id, exc_info=True
                )

    def _record(self, direction: Direction, data: bytes) -> None:
        self.counts[direction] += 1
        now = self._clock()
        if direction == "<":
            kind = client_event_type(data)
        else:
            kind = server_event_type(data)
        if kind in AUDIO_EVENTS:
            self._audio(direction, kind, data, now)
            return
        event: Any = _parse(data)
        whole = False  # the parsed frame (else a bounded preview)
        if event is _TOO_DEEP:
            kind = "(nested too deeply)"
            event = {"text": data[:2000].decode("utf-8", "replace")}
        elif isinstance(event, dict) and isinstance(event.get("type"), str):
            kind = event["type"]
            whole = True
        elif event is not None:
            kind = "(not an event)"
            event = {"text": data[:2000].decode("utf-8", "replace")}
        elif _is_text(data):
            kind = "(invalid JSON)"
            event = {"text": data[:2000].decode("utf-8", "replace")}
        else:
            kind = "(binary frame)"
            event = {"bytes": len(data)}
        entry: dict[str, Any] = {
            "seq": self._next(),
            "t": now,
            "dir": direction,
            "type": kind,
        }
        large = whole and len(data) > MAX_EVENT_BYTES
        if large:
            entry["event"] = _clip(event)
            size = len(json.dumps(entry["event"])) + ENTRY_BYTES
        else:
            entry["event"] = event
            size = (len(data) if whole else 2000) + ENTRY_BYTES
        self._add_event(entry, size)
        self._publish("log", entry)
        if direction == "<":
            self._client_event(kind, event, entry, large)
        else:
            self._server_event(kind, event, len(data), size)

    def closed(self, code: int | None, reason: str) -> None:
        """The connection ended with this close code (``None``: unknown)."""
        self.closed_at = self._clock()
        self.close_code = code
        self.close_reason = reason
        try:
            self._publish("meta", self.summary())
        except Exception:  # pragma: no cover - a summary is flat
            logger.warning("%s: inspector failed", self.id, exc_info=True)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _audio(self, direction: Direction, kind: str, data: bytes, now: float) -> None:
        try:
            payload = _audio_decoder.decode(data)
            size = _b64_size(payload.audio or payload.delta)
        except msgspec.DecodeError:
            size = 0
        last = self.events[-1] if self.events else None
        if (
            last is not None
            and last["type"] == kind
            and last["dir"] == direction
            and "audio_bytes" in last
        ):
            last["audio_bytes"] += size
            last["count"] += 1
            last["t_last"] = now
            self._publish("log", last)
            return
        entry = {
            "seq": self._next(),
            "t": now,
            "t_last": now,
            "dir": direction,
            "type": kind,
            "audio_bytes": size,
            "count": 1,
        }
        self._add_event(entry, ENTRY_BYTES)
        self._publish("log", entry)

    def _client_event(
        self, kind: str, event: Any, entry: dict[str, Any], large: bool
    ) -> None:
        if kind != "session.update":
            self._pending = None
            return
        request = event.get("session")
        self._pending = {
            "seq": entry["seq"],
            "t": entry["t"],
            "event_id": event.get("event_id"),
            "request": _clip(request) if large else request,
        }

    def _server_event(self, kind: str, event: Any, length: int, size: int) -> None:
        pending, self._pending = self._pending, None
        if kind in ("session.created", "session.updated"):
            config = event.get("session")
            if pending is not None and kind == "session.updated":
                changes = diff(self.config, config) if self.config is not None else []
                update = dict(pending, status="accepted")
                listed = [c.to_json() for c in changes]
                update["changes"] = (
                    _clip(listed) if length > MAX_EVENT_BYTES else listed
                )
                self._add_update(update, 2 * size)
            # The effective config is kept whole (it is one frame at most).
            self.config = config
            self._resize_config(length + ENTRY_BYTES)
            if isinstance(config, dict) and isinstance(config.get("model"), str):
                self.model = config["model"]
            self._publish("config", config)
        elif kind == "error" and pending is not None:
            error = event.get("error") or {}
            update = dict(pending, status="rejected")
            update["error"] = {
                "type": error.get("type"),
                "code": error.get("code"),
                "message": error.get("message"),
                "param": error.get("param"),
                "event_id": error.get("event_id"),
            }
            self._add_update(update, size)

    def _add_update(self, update: dict[str, Any], size: int) -> None:
        if len(self.updates) >= self._max_events:
            self.updates.popleft()
            self._resize(-self._update_sizes.popleft())
        self.updates.append(update)
        self._update_sizes.append(size)
        self._resize(size)
        self._publish("update", update)

    # --- Memory ----------------------------------------------------------------------

    def _add_event(self, entry: dict[str, Any], size: int) -> None:
        if len(self.events) >= self._max_events:
            self.events.popleft()
            self._resize(-self._event_sizes.popleft())
        self.events.append(entry)
        self._event_sizes.append(size)
        self._resize(size)

    def _resize_config(self, size: int) -> None:
        delta, self._config_size = size - self._config_size, size
        self._resize(delta)

    def _resize(self, delta: int) -> None:
        self.bytes += delta
        if self.on_resize is not None and delta:
            self.on_resize(delta)

    def drop_oldest(self) -> int:
        """Forget the oldest log entry (or else update); the bytes freed."""
        if self.events:
            self.events.popleft()
            freed = self._event_sizes.popleft()
        elif self.updates:
            self.updates.popleft()
            freed = self._update_sizes.popleft()
        else:
            return 0
        self.bytes -= freed
        return freed

    # --- Views -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The session's line in the list."""
        return {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "live": self.live,
            "opened": self.opened,
            "closed": self.closed_at,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "events_in": self.counts["<"],
            "events_out": self.counts[">"],
            "updates": len(self.updates),
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything kept: summary, config, updates and log."""
        return {
            "session": self.summary(),
            "config": self.config,
            "updates": list(self.updates),
            "events": list(self.events),
        }

    # --- Streaming -------------------------------------------------------------------

    def subscribe(self) -> _Subscriber:
        """Follow this session (messages queued from now on)."""
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        """Stop following."""
        self._subscribers.discard(subscriber)

    def _publish(self, kind: str, data: Any) -> None:
        if not self._subscribers:
            return
        message = json.dumps({"kind": kind, "data": data})
        for subscriber in self._subscribers:
            subscriber.put(message)


#: Frames larger than this are kept with their long strings cut (see _clip).
MAX_EVENT_BYTES = 64 * 1024
#: What a string keeps of its beginning in a cut frame.
CLIP_CHARS = 1000
#: Bytes counted per log entry besides its frame (its dict and numbers).
ENTRY_BYTES = 200

#: Deepest nesting the inspector shows (the engine accepts tool parameters
#: nested 200 levels); deeper frames are shown as text.
MAX_DEPTH = 256
#: What :func:`_parse` returns for a frame nested deeper than MAX_DEPTH.
_TOO_DEEP: Any = object()


def _parse(data: bytes) -> Any:
    """The frame as JSON, ``None`` if it is not JSON, or ``_TOO_DEEP``.

    Bounded: ``json.loads`` stops at the interpreter's recursion limit
    (``RecursionError``, caught), and what it does parse is measured without
    recursion, only when the frame has enough brackets to be that deep.
    """
    try:
        event = json.loads(data)
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return None
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(event) > MAX_DEPTH:
        return _TOO_DEEP
    return event


def _clip(value: Any) -> Any:
    """A copy of parsed JSON with each string over CLIP_CHARS cut, saying how
    long it was (a large frame keeps its shape, ids and types, not its bulk).
    Recursion is bounded: values come from :func:`_parse` (MAX_DEPTH)."""
    if isinstance(value, str):
        if len(value) <= CLIP_CHARS:
            return value
        return f"{value[:CLIP_CHARS]}… ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _clip(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clip(item) for item in value]
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Inspector:
    """The sessions the inspector shows, and its routes.

    Args:
        api_keys: keys that open the inspector (empty: no authentication).
        max_sessions: sessions kept (live ones first, then the most recent).
        max_events: log entries (and updates) kept per session.
        max_bytes: bytes kept in all (frames as sent, large ones cut): over
            it, closed sessions go first (oldest first), then the oldest
            entries of the session that holds the most.
        keep_closed: seconds a closed session stays listed.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = (),
        max_sessions: int = 50,
        max_events: int = 1000,
        max_bytes: int = 64 * 1024 * 1024,
        keep_closed: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_keys = api_keys
        self.max_sessions = max(1, max_sessions)
        self.max_events = max(1, max_events)
        self.max_bytes = max_bytes
        self.keep_closed = keep_closed
        #: Bytes the records keep, in all (see SessionRecord.bytes).
        self.bytes = 0
        #: Wrong keys per client address (the server's, set by create_app).
        self.throttle: AuthThrottle | None = None
        self._clock = clock
        self.sessions: collections.OrderedDict[str, SessionRecord] = (
            collections.OrderedDict()
        )
        self._secret = os.urandom(32)

    # --- Registry --------------------------------------------------------------------

    def observe(self, session: Session) -> SessionRecord:
        """The observer of a new session (``create_app``'s ``observer``)."""
        record = SessionRecord(session, max_events=self.max_events, clock=self._clock)
        record.on_resize = self._resized
        self.expire()
        self.sessions[record.id] = record
        while len(self.sessions) > self.max_sessions:
            victim = next(
                (sid for sid, r in self.sessions.items() if not r.live),
                next(iter(self.sessions)),
            )
            self._forget(victim)
        return record

    def expire(self) -> None:
        """Forget the sessions closed more than ``keep_closed`` seconds ago."""
        horizon = self._clock() - self.keep_closed
        for sid in [
            sid
            for sid, r in self.sessions.items()
            if r.closed_at is not None and r.closed_at < horizon
        ]:
            self._forget(sid)

    def _forget(self, sid: str) -> None:
        record = self.sessions.pop(sid)
        record.on_resize = None
        self.bytes -= record.bytes

    def _resized(self, delta: int) -> None:
        self.bytes += delta
        if self.bytes <= self.max_bytes:
            return
        closed = sorted(
            (r for r in self.sessions.values() if not r.live),
            key=lambda r: r.closed_at or 0.0,
        )
        for record in closed:
            if self.bytes <= self.max_bytes:
                return
            self._forget(record.id)
        while self.bytes > self.max_bytes:
            largest = max(self.sessions.values(), key=lambda r: r.bytes)
            freed = largest.drop_oldest()
            if not freed:
                return  # only configs are left: one frame per session
            self.bytes -= freed

    # --- Authentication --------------------------------------------------------------

    def _token(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def _valid_key(self, key: str) -> bool:
        return any(hmac.compare_digest(key.encode(), k.encode()) for k in self.api_keys)

    def _authorized(self, conn: HTTPConnection, key: str | None = None) -> bool:
        if not self.api_keys:
            return True
        if key is not None and self._valid_key(key):
            return True
        auth = conn.headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and self._valid_key(auth[7:].strip()):
            return True
        cookie = conn.cookies.get(COOKIE, "")
        return bool(cookie) and any(
            hmac.compare_digest(cookie, self._token(k)) for k in self.api_keys
        )

    @staticmethod
    def _take_key(conn: HTTPConnection) -> str | None:
        """Remove ``key`` from the request's query (so no log shows it)."""
        pairs = parse_qsl(conn.scope.get("query_string", b"").decode("latin-1"))
        key = next((v for k, v in pairs if k == "key"), None)
        if key is not None:
            rest = [(k, v) for k, v in pairs if k != "key"]
            conn.scope["query_string"] = urlencode(rest).encode("latin-1")
        return key

    def _base(self, conn: HTTPConnection) -> str:
        return str(conn.scope.get("root_path", "")) + "/inspector"

    def _login_cookie(self, response: Response, conn: HTTPConnection, key: str) -> None:
        response.set_cookie(
            COOKIE,
            self._token(key),
            path=self._base(conn),
            httponly=True,
            samesite="strict",
            secure=conn.url.scheme in ("https", "wss"),
        )

    # --- Routes ----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """``/inspector``, its assets, login, JSON API and live WebSocket."""
        return [
            Route("/inspector", self.page, methods=["GET"]),
            Route("/inspector/login", self.login, methods=["POST"]),
            Route("/inspector/logout", self.logout, methods=["GET", "POST"]),
            Route("/inspector/static/{name}", self.static, methods=["GET"]),
            Route("/inspector/api/sessions", self.list_sessions, methods=["GET"]),
            Route("/inspector/api/sessions/{id}", self.get_session, methods=["GET"]),
            WebSocketRoute("/inspector/api/sessions/{id}/live", self.live),
        ]

    def _throttled(self, request: Request) -> Response | None:
        """The 429 page of an address with too many wrong keys."""
        if self.throttle is None or not self.api_keys:
            return None
        retry = self.throttle.retry_after(
            request.client.host if request.client else None
        )
        if not retry:
            return None
        return self._login_page(request, error=True, status=429)

    def _wrong_key(self, request: Request) -> None:
        if self.throttle is not None:
            self.throttle.failed(request.client.host if request.client else None)

    async def page(self, request: Request) -> Response:
        """``GET /inspector``: the page, or the login form."""
        key = self._take_key(request)
        if key is not None and (limited := self._throttled(request)) is not None:
            return limited
        if not self._authorized(request, key):
            if key is not None:
                self._wrong_key(request)
            return self._login_page(request, error=key is not None)
        if key is not None:
            # Drop the key from the address bar (and history), keep a cookie.
            response: Response = RedirectResponse(self._base(request), 303)
            self._login_cookie(response, request, key)
            return response
        page = _static("inspector.html").replace(
            "{{BASE}}", html.escape(self._base(request))
        )
        return HTMLResponse(page, headers=_NO_STORE)

    def _login_page(
        self, request: Request, *, error: bool, status: int = 401
    ) -> Response:
        page = _static("login.html")
        page = page.replace("{{BASE}}", html.escape(self._base(request)))
        message = (
            "Too many wrong keys from your address; try again later."
            if status == 429
            else "That key is not valid."
        )
        page = page.replace(
            "{{ERROR}}", f'<p class="error">{message}</p>' if error else ""
        )
        return HTMLResponse(page, status_code=status, headers=_NO_STORE)

    async def login(self, request: Request) -> Response:
        """``POST /inspector/login``: the form's key, checked, as a cookie."""
        if (limited := self._throttled(request)) is not None:
            return limited
        key = _form_field(await request.body(), "key")
        if key is None or not self._valid_key(key):
            self._wrong_key(request)
            return self._login_page(request, error=True)
        response = RedirectResponse(self._base(request), 303)
        self._login_cookie(response, request, key)
        return response

    async def logout(self, request: Request) -> Response:
        """``/inspector/logout``: forget the login cookie."""
        response = RedirectResponse(self._base(request), 303)
        response.delete_cookie(COOKIE, path=self._base(request))
        return response

    async def static(self, request: Request) -> Response:
        """The page's script and style sheet."""
        name = request.path_params["name"]
        media = _STATIC.get(name)
        if media is None:
            return Response("Not Found", 404, media_type="text/plain")
        return Response(_static(name), media_type=media)

    async def list_sessions(self, request: Request) -> Response:
        """``GET /inspector/api/sessions``: live sessions first, then recent."""
        if not self._authorized(request, self._take_key(request)):
            return _unauthorized()
        self.expire()
        records = sorted(self.sessions.values(), key=lambda r: (not r.live, -r.opened))
        return JSONResponse(
            {"sessions": [r.summary() for r in records]}, headers=_NO_STORE
        )

    async def get_session(self, request: Request) -> Response:
        """``GET /inspector/api/sessions/{id}``: one session, all that is kept."""
        if not self._authorized(request, self._take_key(request)):
            return _unauthorized()
        record = self.sessions.get(request.path_params["id"])
        if record is None:
            return JSONResponse({"error": "no such session"}, 404)
        return JSONResponse(record.snapshot(), headers=_NO_STORE)

    async def live(self, websocket: WebSocket) -> None:
        """WebSocket: a snapshot of one session, then each change as it happens."""
        if not self._authorized(websocket, self._take_key(websocket)):
            await websocket.close(1008)
            return
        record = self.sessions.get(websocket.path_params["id"])
        await websocket.accept()
        if record is None:
            await websocket.close(1000, "no such session")
            return
        subscriber = record.subscribe()
        receiver = asyncio.ensure_future(websocket.receive())
        waiter: asyncio.Future[Any] | None = None
        try:
            snapshot = {"kind": "snapshot", "data": record.snapshot()}
            await websocket.send_text(json.dumps(snapshot))
            while True:
                while subscriber.queue:
                    await websocket.send_text(subscriber.queue.popleft())
                if subscriber.overflowed:
                    await websocket.close(CLOSE_TOO_SLOW, "inspector page too slow")
                    return
                subscriber.ready.clear()
                waiter = asyncio.ensure_future(subscriber.ready.wait())
                done, _ = await asyncio.wait(
                    {waiter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiver in done:
                    waiter.cancel()
                    await asyncio.gather(waiter, return_exceptions=True)
                    message = receiver.result()
                    if message["type"] == "websocket.disconnect":
                        return
                    receiver = asyncio.ensure_future(websocket.receive())
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            record.unsubscribe(subscriber)
            pending = [f for f in (receiver, waiter) if f is not None]
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


_NO_STORE = {"Cache-Control": "no-store"}


def _form_field(body: bytes, name: str) -> str | None:
    """One field of an ``application/x-www-form-urlencoded`` body (the login
    form's encoding), parsed here: Starlette's ``Request.form()`` needs
    ``python-multipart``, which a plain install does not have."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for field, value in parse_qsl(text, keep_blank_values=True):
        if field == name:
            return value
    return None


def _unauthorized() -> Response:
    return JSONResponse(
        {"error": "an API key is required (?key=, the login form or a Bearer header)"},
        401,
    )


#: What ``/inspector`` answers on a server started without the inspector.
OFF_MESSAGE = (
    "The inspector is off on this server. Start it with --inspector "
    "(openrealtime serve --inspector) or OPENREALTIME_INSPECTOR=1, then reload.\n"
)


async def _off(request: Request) -> Response:
    return PlainTextResponse(OFF_MESSAGE, 404)


def off_routes() -> list[BaseRoute]:
    """``/inspector`` with the inspector off: a 404 that says how to turn it on."""
    return [Route("/inspector", _off, methods=["GET"])]


# --- The serve command's flags -------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--inspector`` and its limits to ``openrealtime serve``."""
    parser.add_argument(
        "--inspector",
        action="store_true",
        default=None,
        help="serve the inspector page at /inspector (needs an API key when "
        "authentication is on: open /inspector?key=KEY or use its login form)",
    )
    parser.add_argument(
        "--inspector-sessions",
        type=int,
        metavar="N",
        help="sessions the inspector keeps (default 50)",
    )
    parser.add_argument(
        "--inspector-events",
        type=int,
        metavar="M",
        help="events the inspector keeps per session (default 1000)",
    )
    parser.add_argument(
        "--inspector-max-bytes",
        type=int,
        metavar="N",
        help="bytes of frames the inspector keeps in all, oldest dropped first "
        "(default 64 MiB)",
    )
    parser.add_argument(
        "--inspector-keep-closed",
        type=float,
        metavar="SECONDS",
        help="how long the inspector lists a closed session (default 3600)",
    )


def settings_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The :class:`Settings` fields the inspector flags set."""
    overrides: dict[str, object] = {}
    if args.inspector:
        overrides["inspector"] = True
    if args.inspector_sessions is not None:
        overrides["inspector_sessions"] = args.inspector_sessions
    if args.inspector_events is not None:
        overrides["inspector_events"] = args.inspector_events
    if args.inspector_max_bytes is not None:
        overrides["inspector_max_bytes"] = args.inspector_max_bytes
    if args.inspector_keep_closed is not None:
        overrides["inspector_keep_closed"] = args.inspector_keep_closed
    return overrides


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """The ``OPENREALTIME_*`` variables that carry the flags to workers."""
    env: dict[str, str] = {}
    if args.inspector:
        env["OPENREALTIME_INSPECTOR"] = "1"
    if args.inspector_sessions is not None:
        env["OPENREALTIME_INSPECTOR_SESSIONS"] = str(args.inspector_sessions)
    if args.inspector_events is not None:
        env["OPENREALTIME_INSPECTOR_EVENTS"] = str(args.inspector_events)
    if args.inspector_max_bytes is not None:
        env["OPENREALTIME_INSPECTOR_MAX_BYTES"] = str(args.inspector_max_bytes)
    if args.inspector_keep_closed is not None:
        env["OPENREALTIME_INSPECTOR_KEEP_CLOSED"] = str(args.inspector_keep_closed)
    return env
