"""The ASGI application: WebSocket ``/v1/realtime`` and the REST endpoints.

:func:`create_app` returns a Starlette app, so it can be served on its own
(``openrealtime serve``) or mounted in any FastAPI or Starlette app::

    from openrealtime.server import Settings, create_app

    app.mount("/openai", create_app(Settings(api_keys=("secret",))))

Routes: WebSocket ``/v1/realtime`` and ``/realtime``; ``POST
/v1/realtime/client_secrets`` and ``/realtime/client_secrets``; ``GET
/healthz``; ``GET /metrics`` (Prometheus text format); WebRTC ``POST
/v1/realtime/calls`` and ``.../calls/{call_id}/hangup``, and the talk page
``GET /talk`` (:mod:`openrealtime.server.webrtc`); with
``Settings(inspector=True)``, ``GET /inspector`` and its API
(:mod:`openrealtime.server.inspector`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Literal

from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from openrealtime.config import SessionKind, default_config
from openrealtime.exceptions import InvalidRequestError, ProtocolError
from openrealtime.ids import RandomIds
from openrealtime.responders.base import Chunk, Responder
from openrealtime.responders.pacing import paced
from openrealtime.server.connection import Connection, EventObserver
from openrealtime.server.guard import Guard
from openrealtime.server.handshake import (
    CLOSE_AUTH,
    Accepted,
    Rejected,
    close_reason,
    error_frame,
    find_api_key,
    negotiate,
    select_subprotocol,
)
from openrealtime.server.hosts import HostPolicy
from openrealtime.server.inspector import Inspector, off_routes
from openrealtime.server.lifecycle import die_with_master
from openrealtime.server.logsafe import printable
from openrealtime.server.metrics import Metrics
from openrealtime.server.rest import (
    authorize,
    create_client_secret,
    rest_error,
)
from openrealtime.server.secrets import SecretStore
from openrealtime.server.settings import ConfigurationError, Settings
from openrealtime.server.talk import talk_routes
from openrealtime.server.throttle import AuthThrottle, too_many_failures
from openrealtime.server.webrtc import (
    Calls,
    missing as missing_webrtc,
    refused_sideband,
    webrtc_routes,
)
from openrealtime.session import ResponseRequest, Session
from openrealtime.voice.compute import default_pool, shutdown_default_pool


__all__ = ["AUTH_WARNED_ENV", "RealtimeServer", "app_from_env", "create_app"]

logger = logging.getLogger("openrealtime.server")

#: Set by the CLI for worker processes once it has warned that auth is off.
AUTH_WARNED_ENV = "OPENREALTIME_AUTH_WARNED"

#: WebSocket close code for a message that is too big (RFC 6455 §7.4.1).
CLOSE_TOO_BIG = 1009


def _too_large(size: int, maximum: int) -> InvalidRequestError:
    return InvalidRequestError(
        "message_too_large",
        f"The WebSocket message is too large: {size} bytes. The maximum is "
        f"{maximum} bytes.",
        None,
    )


def _size(text: str) -> int:
    # Frames are ASCII JSON in practice, where characters are bytes; only a
    # long frame can be too large, so only a long one is encoded to measure.
    return len(text.encode()) if not text.isascii() else len(text)


class _FirstResponse:
    """A session's responder, made when the session first asks for a response.

    Most sessions of a busy server are idle, and the speaking responder with
    its speech lane and its pacing was ~0.6 KiB of each (tracemalloc); until
    the first ``response.create`` a session holds only this.
    """

    __slots__ = ("_settings", "_made")

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._made: Responder | None = None

    def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        made = self._made
        if made is None:
            settings = self._settings
            made = self._made = paced(settings.responder(), settings.pace)
        return made.respond(request)


class RealtimeServer:
    """The state shared by the connections of one app.

    Args:
        settings: the server settings.
        secrets: where ephemeral keys are kept.
        observer: called for each new session; may return an observer that
            sees every frame of that connection.

    Attributes:
        metrics: the counters behind ``GET /metrics``.
    """

    def __init__(
        self,
        settings: Settings,
        secrets: SecretStore,
        observer: Callable[[Session], EventObserver | None] | None = None,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.observer = observer
        self.metrics = Metrics()
        self._ids = RandomIds()
        #: The Host names answered (``None``: any); set by create_app.
        self.hosts: HostPolicy | None = None
        #: Wrong keys per client address.
        self.throttle = AuthThrottle(
            max_failures=settings.auth_max_failures,
            window=settings.auth_failure_window,
        )
        #: WebRTC calls (``POST /v1/realtime/calls``) of this process.
        self.calls = Calls(self)

    def routes(self) -> list[BaseRoute]:
        """The routes, under both ``/v1/realtime`` and ``/realtime``."""
        routes: list[BaseRoute] = []
        endpoint = _RawEndpoint(self.websocket)
        for prefix in ("/v1/realtime", "/realtime"):
            routes.append(WebSocketRoute(prefix, endpoint))
            routes.append(
                Route(f"{prefix}/client_secrets", self.client_secrets, methods=["POST"])
            )
            routes += webrtc_routes(self, prefix)
        routes += talk_routes()
        routes.append(Route("/healthz", self.healthz, methods=["GET"]))
        routes.append(Route("/metrics", self.metrics_endpoint, methods=["GET"]))
        return routes

    # --- HTTP ------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: the server is up, and so is its key store.

        With a store that can be pinged (Redis), a store that does not answer
        makes it 503 ``{"status": "unavailable", "reason": ...}``: this node
        cannot mint or check ephemeral keys.
        """
        ping = getattr(self.secrets, "ping", None)
        if ping is not None and not await ping():
            return JSONResponse(
                {
                    "status": "unavailable",
                    "reason": "the Redis key store is unreachable",
                },
                503,
            )
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(self, request: Request) -> Response:
        """``GET /metrics``: counters in the Prometheus text format (with a
        ``metrics_key``, only for ``Authorization: Bearer`` that key)."""
        key = self.settings.metrics_key
        if key is not None:
            given = request.headers.get("authorization", "")
            if not (
                given[:7].lower() == "bearer "
                and hmac.compare_digest(given[7:].strip().encode(), key.encode())
            ):
                return PlainTextResponse(
                    "metrics need Authorization: Bearer <metrics key>\n",
                    401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return PlainTextResponse(
            self.metrics.render(), media_type="text/plain; version=0.0.4"
        )

    async def client_secrets(self, request: Request) -> Response:
        """``POST /v1/realtime/client_secrets``: mint an ephemeral key."""
        # The key first: a request without one never has its body read.
        address = request.client.host if request.client else None
        retry = self.throttle.retry_after(address)
        if retry:
            limited = rest_error(too_many_failures(retry), 429)
            return Response(
                limited.body,
                429,
                media_type=limited.content_type,
                headers={"Retry-After": str(max(1, math.ceil(retry)))},
            )
        denied = authorize(request.headers, self.settings)
        if denied is not None:
            if find_api_key(request.headers) is not None:
                self.throttle.failed(address)
            return Response(denied.body, denied.status, media_type=denied.content_type)
        body = await request.body()
        result = await create_client_secret(
            body,
            request.headers,
            settings=self.settings,
            secrets=self.secrets,
            ids=self._ids,
            now=time.time(),
        )
        if result.status == 200:
            self.metrics.client_secrets_total += 1
        return Response(
            result.body,
            result.status,
            media_type=result.content_type,
        )

    # --- WebSocket -------------------------------------------------------------------
    #
    # What every transport adapter shares: the ASGI endpoint below and the
    # picows driver (:mod:`openrealtime.server.picows_driver`) both call
    # refuse(), open() and closed(), so the sessions, metrics, logs and
    # observers are the same whichever carries the frames.

    async def negotiate(
        self,
        *,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        subprotocols: Sequence[str],
        address: str | None,
    ) -> Accepted | Rejected:
        """:func:`~openrealtime.server.handshake.negotiate`, throttled: an
        address with too many wrong keys is refused before its key is looked
        at (close 3000), and each wrong key counts
        (:mod:`openrealtime.server.throttle`)."""
        retry = self.throttle.retry_after(address)
        if retry:
            return Rejected(
                too_many_failures(retry),
                CLOSE_AUTH,
                close_reason(too_many_failures(retry)),
            )
        outcome = await negotiate(
            headers=headers,
            query=query,
            subprotocols=subprotocols,
            settings=self.settings,
            secrets=self.secrets,
        )
        if isinstance(outcome, Rejected) and outcome.error.code == "invalid_api_key":
            self.throttle.failed(address)
        return outcome

    def refuse(self, outcome: Rejected, peer: str) -> bytes:
        """Count and log a refused connection; return its ``error`` frame.

        The adapter sends the frame, then closes with ``outcome.code`` and
        ``outcome.reason`` ("marked only by a server CLOSE sent in the same
        millisecond", WIRE_RULES §1).
        """
        self.metrics.rejected_total[outcome.reason] += 1
        logger.info(
            "connection from %s refused (code %s, %s)",
            peer,
            outcome.code,
            outcome.reason,
        )
        frame = error_frame(outcome.error, self._ids, time.time())
        self.metrics.sent(frame)  # events_out["error"] and its code
        return frame

    def open(
        self,
        outcome: Accepted,
        peer: str,
        *,
        send_text: Callable[[bytes], Awaitable[None]] | None = None,
        close: Callable[[int, str], Awaitable[None]] | None = None,
        write: Callable[[bytes], None] | None = None,
        write_close: Callable[[int, str], None] | None = None,
    ) -> Connection:
        """Open the session of an accepted connection and its driver.

        Give the transport as :class:`Connection` takes it (awaitable
        ``send_text``/``close`` or synchronous ``write``/``write_close``).
        The caller starts the connection and calls :meth:`closed` at the end.
        """
        if outcome.call_id is not None:
            sideband = self.calls.join(
                outcome.call_id,
                send_text=send_text,
                close=close,
                write=write,
                write_close=write_close,
            )
            if sideband is not None:
                self.metrics.open_connections += 1
                logger.info("%s: sideband joined from %s", outcome.call_id, peer)
                return sideband
        settings = self.settings
        session = Session(
            kind=outcome.kind,
            model=outcome.model,
            now=time.time(),
            defaults=settings.defaults,
            limits=settings.limits,
            initial=outcome.initial,
            scorer_factory=settings.scorer_factory,
            vad_offload=settings.voice_offload,
            counts=self.metrics.counts,
        )
        on_event = self.observer(session) if self.observer is not None else None
        connection = Connection(
            session,
            send_text=send_text,
            close=close,
            write=write,
            write_close=write_close,
            responder=_FirstResponse(settings),
            transcriber=settings.transcriber,
            metrics=self.metrics,
            on_event=on_event,
            debug=settings.debug,
            voice=default_pool(settings.voice_workers)
            if settings.voice_offload
            else None,
            max_transcription_seconds=settings.max_transcription_seconds,
        )
        metrics = self.metrics
        metrics.open_connections += 1
        metrics.sessions_total += 1
        if outcome.call_id is not None:
            # ?call_id= of no call here: refused, before session.created.
            code, reason, frame = refused_sideband(outcome.call_id)
            connection.fail(frame, code, reason)
        logger.info(
            "%s: %s session opened (%s) from %s",
            session.config.id,
            outcome.kind,
            printable(outcome.model) if outcome.model else "transcription",
            peer,
        )
        return connection

    def closed(self, connection: Connection) -> None:
        """A session opened by :meth:`open` ended (after ``aclose()``)."""
        self.metrics.open_connections -= 1
        if getattr(connection, "sideband", False):
            return
        logger.info(
            "%s: session closed (code %s%s)",
            connection.session.config.id,
            connection.close_code,
            f", {printable(connection.close_reason)}"
            if connection.close_reason
            else "",
        )
        # An observer may want the end too (the inspector shows the code).
        closed = getattr(connection.observer, "closed", None)
        if closed is not None:
            try:
                closed(connection.close_code, connection.close_reason)
            except Exception:
                logger.warning("observer's closed() failed", exc_info=True)

    def fail_too_large(self, connection: Connection, size: int) -> None:
        """A client frame over ``max_frame_bytes``: an error, then close 1009."""
        error = _too_large(size, self.settings.max_frame_bytes)
        connection.fail(
            error_frame(error, self._ids, time.time()),
            CLOSE_TOO_BIG,
            close_reason(error),
        )

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """WebSocket ``/v1/realtime`` (raw ASGI): one Realtime session.

        Raw ``receive``/``send`` rather than Starlette's ``WebSocket``: the
        per-frame loop is the hot path, and the wrapper's state checks and
        extra awaits cost more than the rest of the ASGI step.
        """
        message = await receive()
        if message["type"] != "websocket.connect":  # pragma: no cover
            return
        subprotocols: list[str] = scope.get("subprotocols") or []
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        # §7: "GA checks auth and model *after* the 101 upgrade".
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": select_subprotocol(subprotocols),
                "headers": [],
            }
        )
        outcome = await self.negotiate(
            headers=Headers(scope=scope),
            query=QueryParams(scope.get("query_string", b"")),
            subprotocols=subprotocols,
            address=client[0] if client else None,
        )
        if isinstance(outcome, Rejected):
            frame = self.refuse(outcome, peer)
            await send({"type": "websocket.send", "text": frame.decode()})
            await send(
                {
                    "type": "websocket.close",
                    "code": outcome.code,
                    "reason": outcome.reason,
                }
            )
            return

        async def send_text(data: bytes) -> None:
            await send({"type": "websocket.send", "text": data.decode()})

        async def close(code: int, reason: str) -> None:
            await send({"type": "websocket.close", "code": code, "reason": reason})

        connection = self.open(outcome, peer, send_text=send_text, close=close)
        maximum = self.settings.max_frame_bytes
        quarter = maximum // 4
        try:
            connection.start()
            while True:
                message = await receive()
                text = message.get("text")
                if text is not None:
                    size = _size(text) if len(text) > quarter else len(text)
                    if size <= maximum:
                        await connection.feed_text(text)
                        continue
                    self.fail_too_large(connection, size)
                elif message["type"] == "websocket.disconnect":
                    connection.disconnected(
                        message.get("code", 1005), message.get("reason") or ""
                    )
                    break
                else:
                    data: bytes = message.get("bytes") or b""
                    if len(data) > maximum:
                        self.fail_too_large(connection, len(data))
                    else:
                        connection.receive_binary(data)
                await connection.flush()
        except Exception:
            logger.exception("%s: connection failed", connection.session.config.id)
            connection.disconnected(1011, "")
        finally:
            await connection.aclose()
            self.closed(connection)


class _RawEndpoint:
    """A raw ASGI endpoint: Starlette wraps functions and methods in its
    ``WebSocket`` session, but passes other callables ``scope, receive,
    send`` as they are."""

    __slots__ = ("_app",)

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _check_defaults(settings: Settings) -> None:
    kinds: tuple[SessionKind, ...] = ("realtime", "transcription")
    for kind in kinds:
        try:
            default_config(
                kind,
                id="sess_check",
                model="gpt-realtime",
                created_at=0,
                defaults=settings.defaults,
            )
        except ProtocolError as exc:
            where = f" (at {exc.param})" if exc.param else ""
            raise ConfigurationError(
                f"invalid {kind} session defaults{where}: {exc.message}"
            ) from None


class _Observers:
    """Two observers of one connection, called in turn."""

    def __init__(self, first: EventObserver, second: EventObserver) -> None:
        self._observers = (first, second)

    def __call__(self, direction: Literal["<", ">"], data: bytes) -> None:
        for observer in self._observers:
            observer(direction, data)

    def closed(self, code: int | None, reason: str) -> None:
        for observer in self._observers:
            closed = getattr(observer, "closed", None)
            if closed is not None:
                closed(code, reason)


def _both(
    first: Callable[[Session], EventObserver | None],
    second: Callable[[Session], EventObserver | None],
) -> Callable[[Session], EventObserver | None]:
    def observe(session: Session) -> EventObserver | None:
        a, b = first(session), second(session)
        if a is None or b is None:
            return a or b
        return _Observers(a, b)

    return observe


def create_app(
    settings: Settings | None = None,
    *,
    secrets: SecretStore | None = None,
    observer: Callable[[Session], EventObserver | None] | None = None,
    warn_no_auth: bool = True,
    own_process: bool = False,
) -> Starlette:
    """Build the ASGI app of an openrealtime server.

    Args:
        settings: the server settings (defaults: :class:`Settings()`).
        secrets: where ephemeral keys are kept (default: this process's memory).
        observer: called for each new session; may return an observer that
            sees every frame of that connection.
        warn_no_auth: log a warning when no API key is configured.
        own_process: the app is its process's server (``openrealtime
            serve``, its workers): once started, every object alive then
            (modules, settings, models) is moved out of the garbage
            collector's reach (``gc.freeze``), so full collections walk only
            what sessions allocate; at shutdown the process's voice workers
            end with it. Off for an app embedded in a process of its own.

    Returns:
        A Starlette app; ``app.state.realtime`` is its :class:`RealtimeServer`,
        ``app.state.inspector`` its :class:`Inspector` (``None`` when off).

    Raises:
        ConfigurationError: the operator's session defaults are invalid.
    """
    settings = settings or Settings()
    _check_defaults(settings)
    inspector: Inspector | None = None
    if settings.inspector:
        inspector = Inspector(
            api_keys=settings.api_keys,
            max_sessions=settings.inspector_sessions,
            max_events=settings.inspector_events,
            max_bytes=settings.inspector_max_bytes,
            keep_closed=settings.inspector_keep_closed,
        )
        observer = (
            inspector.observe
            if observer is None
            else _both(observer, inspector.observe)
        )
    if secrets is None:
        secrets = settings.secret_store()
    server = RealtimeServer(settings, secrets, observer)
    if inspector is not None:
        inspector.throttle = server.throttle
    if warn_no_auth and not settings.auth_enabled:
        logger.warning(
            "Authentication is off: no API key is configured, so any client can "
            "open sessions. Set --api-key or OPENREALTIME_API_KEYS to require one."
        )
    if settings.pipeline is not None:
        logger.info(settings.pipeline.describe())
        for line in settings.pipeline.warnings():
            logger.warning(line)
    if warn_no_auth:
        webrtc_missing = missing_webrtc()
        if webrtc_missing is None:
            logger.info("WebRTC: POST /v1/realtime/calls; a page to talk at /talk")
        else:
            logger.warning(webrtc_missing)
    routes = server.routes()
    from openrealtime.server.audio_api import AudioApi

    routes += AudioApi(settings).routes()  # /v1/audio/transcriptions, /speech
    if inspector is not None:
        routes += inspector.routes()
    else:
        routes += off_routes()
    hosts = HostPolicy(
        settings.allowed_hosts,
        auth_enabled=settings.auth_enabled,
        bind_host=settings.host,
    )
    server.hosts = None if hosts.any else hosts
    guard = Middleware(
        Guard,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
        hosts=server.hosts,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if own_process:
            if settings.voice_offload:
                # Start the turn detection workers before the port opens:
                # made at the first session, they took the server's core for
                # a second while that session ran (bench/README.md).
                pool = await asyncio.to_thread(
                    default_pool, settings.voice_workers, wait=True
                )
                if settings.scorer_factory is not None:
                    # And load the VAD model in each of them: the first
                    # session on a worker paid ~110 ms for it in its first
                    # turn detection job (ONNX Silero).
                    await asyncio.to_thread(pool.prime, settings.scorer_factory)
            # A full collection of a freshly started server walked ~60,000
            # start-up objects for 10 ms while a client waited for its
            # reply. Collect what start-up left, then freeze the rest.
            gc.collect()
            gc.freeze()
        yield
        await server.calls.aclose()  # WebRTC calls end with the server
        # A speech engine with a process of its own (Piper) ends with it too.
        close = getattr(settings.synthesizer, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
        if own_process:
            # The server process ends here: so do its voice workers.
            await asyncio.to_thread(shutdown_default_pool)

    app = Starlette(routes=routes, middleware=[guard], lifespan=lifespan)
    app.state.realtime = server
    app.state.inspector = inspector
    return app


def app_from_env() -> Starlette:
    """The app configured from ``OPENREALTIME_*`` (uvicorn's ``factory=True``).

    In a worker of ``serve --workers``, it also makes the process exit when
    its master dies (:func:`~openrealtime.server.lifecycle.die_with_master`).
    """
    die_with_master()
    return create_app(
        Settings.from_env(),
        warn_no_auth=os.environ.get(AUTH_WARNED_ENV) != "1",
        own_process=True,
    )
