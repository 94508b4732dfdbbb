"""Several processes, one service: reach a WebRTC call wherever it lives.

A call lives in the process that answered its offer (its UDP sockets and its
session are there). With ``--redis-url`` every process (``--workers N``, or
several machines) shares Redis, and:

* the call's owner writes ``<prefix>call:<call_id> = <worker>`` while the call
  lasts (``SET ... EX``, refreshed by nothing: it expires with the longest
  session, and is deleted when the call ends);
* every process listens on its own pub/sub channel ``<prefix>worker:<worker>``;
* ``POST .../calls/{call_id}/hangup`` on another process publishes ``hangup``
  to the owner;
* a sideband WebSocket (``?call_id=``) on another process becomes a
  :class:`RemoteSideband`: it publishes ``join``, then each client event as
  ``in``, and ``leave`` at the end; the owner attaches a relay (a
  :class:`~openrealtime.server.webrtc.SidebandConnection` whose transport
  publishes ``out`` and ``close`` back). Messages leave each process in order
  through one queue, and Redis keeps the order of one publisher's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from openrealtime.server.connection import Connection
from openrealtime.server.webrtc import SidebandConnection, refused_sideband
from openrealtime.session import Close, Session


if TYPE_CHECKING:
    from openrealtime.server.webrtc import Calls


__all__ = ["CallRouter", "RemoteSideband"]

logger = logging.getLogger("openrealtime.server.webrtc")

#: Seconds a call's owner entry lives at most (longer than any session).
CALL_TTL = 3 * 3600


class CallRouter:
    """The Redis side of :class:`~openrealtime.server.webrtc.Calls`."""

    def __init__(
        self, url: str, calls: Calls, *, prefix: str = "openrealtime:"
    ) -> None:
        self.calls = calls
        self.prefix = prefix
        self.worker = "w_" + secrets.token_hex(8)
        self._redis = redis.Redis.from_url(
            url, socket_connect_timeout=2.0, health_check_interval=30
        )
        self._started: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        #: Sidebands here joined to calls elsewhere, by sideband id.
        self.remote: dict[str, RemoteSideband] = {}
        #: Relays here for sidebands elsewhere, by sideband id.
        self.relays: dict[str, SidebandConnection] = {}

    def _key(self, call_id: str) -> str:
        return f"{self.prefix}call:{call_id}"

    def _channel(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}"

    async def start(self) -> None:
        """Listen on this process's channel (once; before owning a call)."""
        if self._started is None:
            loop = asyncio.get_running_loop()
            self._started = loop.create_task(self._listen())
            self._sender = loop.create_task(self._send())
        await self._ready.wait()

    async def aclose(self) -> None:
        for task in (self._started, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._redis.aclose()

    # --- Owners -----------------------------------------------------------------

    async def register(self, call_id: str) -> None:
        await self.start()
        await self._redis.set(self._key(call_id), self.worker, ex=CALL_TTL)

    async def unregister(self, call_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._key(call_id))

    async def owner(self, call_id: str) -> str | None:
        value = await self._redis.get(self._key(call_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def hangup(self, call_id: str) -> bool:
        """Ask the call's owner to hang up; whether a live owner got it."""
        owner = await self.owner(call_id)
        if owner is None or owner == self.worker:
            return False
        received = await self._redis.publish(
            self._channel(owner), json.dumps({"op": "hangup", "call_id": call_id})
        )
        return bool(received)

    # --- Messages ---------------------------------------------------------------

    def post(self, worker: str, message: dict[str, Any]) -> None:
        """Publish to a worker, in order with every other message from here."""
        self._outbox.put_nowait((worker, message))

    async def _send(self) -> None:
        while True:
            worker, message = await self._outbox.get()
            try:
                await self._redis.publish(self._channel(worker), json.dumps(message))
            except (RedisError, OSError) as exc:
                logger.warning("call relay: publish failed: %s", type(exc).__name__)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel(self.worker))
        self._ready.set()
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    self._handle(json.loads(message["data"]))
                except Exception:
                    logger.exception("call relay: bad message")
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "hangup":
            call = self.calls.get(message["call_id"])
            if call is not None:
                call.spawn(call.end("hung up"))
        elif op == "join":
            self._join(message["call_id"], message["sid"], message["from"])
        elif op == "in":
            relay = self.relays.get(message["sid"])
            if relay is not None:
                relay.receive_text(message["data"])
        elif op == "leave":
            relay = self.relays.pop(message["sid"], None)
            if relay is not None:
                relay.call.spawn(relay.aclose())
        elif op == "out":
            remote = self.remote.get(message["sid"])
            if remote is not None:
                remote.deliver(message["data"].encode())
        elif op == "close":
            remote = self.remote.get(message["sid"])
            if remote is not None:
                remote.closed_by_owner(message)

    def _join(self, call_id: str, sid: str, worker: str) -> None:
        def write(data: bytes) -> None:
            self.post(worker, {"op": "out", "sid": sid, "data": data.decode()})

        def write_close(code: int, reason: str) -> None:
            self.relays.pop(sid, None)
            self.post(
                worker, {"op": "close", "sid": sid, "code": code, "reason": reason}
            )

        relay = self.calls.join(
            call_id, write=write, write_close=write_close, local=True
        )
        if not isinstance(relay, SidebandConnection):
            self.post(worker, {"op": "close", "sid": sid, "missing": call_id})
            return
        self.relays[sid] = relay
        logger.info("%s: sideband joined from %s", call_id, worker)

    # --- Sidebands here for calls elsewhere -------------------------------------

    def join_remote(self, call_id: str, **transport: Any) -> RemoteSideband:
        return RemoteSideband(self, call_id, **transport)


class RemoteSideband(Connection):
    """A sideband WebSocket here for a call in another process."""

    sideband = True

    def __init__(self, router: CallRouter, call_id: str, **transport: Any) -> None:
        # A placeholder engine: the call's session lives with its owner.
        super().__init__(
            Session(now=time.time()), responder=_NoResponder(), **transport
        )
        self.router = router
        self.call_id = call_id
        self.sid = "sb_" + secrets.token_hex(8)
        self._owner: str | None = None
        self._before_owner: list[str] = []

    def start(self) -> None:
        if self._write_now is None:
            self._writer = self._loop.create_task(self._write())
        self._tasks["join"] = self._loop.create_task(self._join())

    async def _join(self) -> None:
        router = self.router
        try:
            await router.start()
            owner = await router.owner(self.call_id)
        except (RedisError, OSError):
            owner = None
        if self._closing:
            return
        if owner is None:
            self._missing()
            return
        router.remote[self.sid] = self
        self._owner = owner
        router.post(
            owner,
            {
                "op": "join",
                "call_id": self.call_id,
                "sid": self.sid,
                "from": router.worker,
            },
        )
        early, self._before_owner = self._before_owner, []
        for data in early:
            router.post(owner, {"op": "in", "sid": self.sid, "data": data})

    def _missing(self) -> None:
        code, reason, frame = refused_sideband(self.call_id)
        self.fail(frame, code, reason)

    def receive_text(self, data: str | bytes) -> None:
        if self._closing:
            return
        text = data.decode() if isinstance(data, bytes) else data
        if self._owner is None:
            self._before_owner.append(text)
        else:
            self.router.post(self._owner, {"op": "in", "sid": self.sid, "data": text})

    def receive_binary(self, data: bytes = b"") -> None:
        pass  # the owner would answer an error; binary frames mean nothing here

    def deliver(self, data: bytes) -> None:
        if not self._closing:
            self._queue_frame(data)

    def closed_by_owner(self, message: dict[str, Any]) -> None:
        self.router.remote.pop(self.sid, None)
        if "missing" in message:
            self._missing()
            return
        self._begin_close(
            Close(int(message.get("code", 1000)), message.get("reason", ""))
        )

    async def aclose(self) -> None:
        router = self.router
        if router.remote.pop(self.sid, None) is not None and self._owner is not None:
            router.post(self._owner, {"op": "leave", "sid": self.sid})
        await super().aclose()


class _NoResponder:
    def respond(self, request: Any) -> Any:  # pragma: no cover - never called
        raise AssertionError("a sideband connection has no responder")
