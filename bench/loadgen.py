"""Load generator: N connections doing session.update -> session.updated loops.

Each connection connects, reads the one ``session.created`` event, waits until
every connection is ready, then loops: send ``session.update``, await the reply.
Uses picows + uvloop (websockets when picows is missing) so the generator is
not the bottleneck. Reports msgs/s, latency percentiles and protocol checks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    SESSION_UPDATE_BYTES,
    percentile,
    pin_self,
    raise_nofile,
    system_busy_seconds,
    tree_cpu_seconds,
)


try:
    import msgspec

    class _TypeOnly(msgspec.Struct):
        type: str = ""

    _decoder = msgspec.json.Decoder(_TypeOnly)

    def event_type(payload: bytes | memoryview) -> str:
        """The ``type`` field of a JSON event (other fields are skipped)."""
        try:
            return _decoder.decode(payload).type
        except msgspec.DecodeError:
            return "<invalid json>"

except ImportError:  # pragma: no cover - msgspec is a project dependency

    def event_type(payload: bytes | memoryview) -> str:
        """The ``type`` field of a JSON event."""
        try:
            obj = json.loads(bytes(payload))
        except ValueError:
            return "<invalid json>"
        return str(obj.get("type", "")) if isinstance(obj, dict) else ""


_FAST = {
    p: p[9:-1].decode()
    for p in (b'{"type":"session.updated"', b'{"type":"session.created"')
}


def reply_type(payload: bytes | memoryview) -> str:
    """Event type, with a fast path for ``{"type":"session.updated"...``."""
    head = bytes(payload[:25])
    kind = _FAST.get(head)
    return kind if kind is not None else event_type(payload)


@dataclass
class Stats:
    """Counters shared by every connection of this process."""

    measuring: bool = False
    stopping: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    measured: int = 0
    sent: int = 0
    replies: int = 0
    wrong_type: int = 0
    unexpected: int = 0
    missing_created: int = 0
    dropped: int = 0
    wrong_types: dict[str, int] = field(default_factory=dict)


class Conn:
    """State of one connection's request/response loop (client-agnostic)."""

    __slots__ = (
        "stats",
        "send",
        "got_created",
        "ready",
        "awaiting",
        "sent_at",
        "finished",
        "closing",
        "closed",
        "sent",
        "replies",
        "interval",
        "next_at",
    )

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.send: Callable[[], None] = lambda: None
        self.got_created = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.awaiting = False
        self.sent_at = 0
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closing = False
        self.closed = False
        self.sent = 0
        self.replies = 0
        #: Paced mode (``--rate``): seconds between this connection's sends,
        #: and when (loop time) the next one is due; 0: send on each reply.
        self.interval = 0.0
        self.next_at = 0.0

    def fire(self) -> None:
        """Send one session.update."""
        self.awaiting = True
        self.sent += 1
        self.stats.sent += 1
        self.sent_at = time.perf_counter_ns()
        self.send()

    def on_text(self, payload: bytes | memoryview) -> None:
        """Handle one complete text message."""
        now = time.perf_counter_ns()
        st = self.stats
        kind = reply_type(payload)
        if not self.got_created:
            self.got_created = True
            if kind != "session.created":
                st.missing_created += 1
                st.wrong_types[kind] = st.wrong_types.get(kind, 0) + 1
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if not self.awaiting:
            st.unexpected += 1
            st.wrong_types[kind] = st.wrong_types.get(kind, 0) + 1
            return
        self.awaiting = False
        self.replies += 1
        st.replies += 1
        if kind != "session.updated":
            st.wrong_type += 1
            st.wrong_types[kind] = st.wrong_types.get(kind, 0) + 1
        if st.measuring:
            st.measured += 1
            st.latencies_ns.append(now - self.sent_at)
        if st.stopping:
            if not self.finished.done():
                self.finished.set_result(None)
        elif self.interval:
            self.pace()
        else:
            self.fire()

    def pace(self) -> None:
        """Paced mode: send at the next slot of this connection's schedule,
        or at once when the reply came after it (the schedule then restarts
        from now, so a slow server is not sent a burst to catch up)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.next_at = max(self.next_at + self.interval, now)
        if self.next_at <= now:
            self.fire()
        else:
            loop.call_at(self.next_at, self._fire_if_running)

    def _fire_if_running(self) -> None:
        if not (self.stats.stopping or self.closed):
            self.fire()

    def on_closed(self) -> None:
        """The connection went away."""
        if self.closed:
            return
        self.closed = True
        if not self.closing:
            self.stats.dropped += 1
        for fut in (self.ready, self.finished):
            if not fut.done():
                fut.set_result(None)


# --------------------------------------------------------------------------- #
# picows client


def _make_picows_opener(
    stats: Stats, local_addr: str | None = None
) -> Callable[[str], Any]:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    text, cont, close = WSMsgType.TEXT, WSMsgType.CONTINUATION, WSMsgType.CLOSE

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.conn = Conn(stats)
            self.buf: bytearray | None = None
            self.transport: WSTransport | None = None

        def on_ws_connected(self, transport: WSTransport) -> None:
            self.transport = transport
            payload = update_payload()
            self.conn.send = lambda: transport.send(text, payload)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            mt = frame.msg_type
            if mt == text:
                if frame.fin:
                    self.conn.on_text(frame.get_payload_as_memoryview())
                else:
                    self.buf = bytearray(frame.get_payload_as_memoryview())
            elif mt == cont and self.buf is not None:
                self.buf += frame.get_payload_as_memoryview()
                if frame.fin:
                    data, self.buf = bytes(self.buf), None
                    self.conn.on_text(data)
            elif mt == close:
                self.conn.on_closed()
                transport.send_close(frame.get_close_code())
                transport.disconnect()

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            self.conn.on_closed()

    async def open_one(url: str) -> tuple[Conn, Callable[[], Any]]:
        extra: dict[str, Any] = {}
        if local_addr:
            # A source address of its own gives this process its own ~28k
            # ephemeral ports towards the server (127.0.0.0/8 is all local).
            extra["local_addr"] = (local_addr, 0)
        transport, listener = await ws_connect(
            Listener,
            url,
            websocket_handshake_timeout=60,
            read_buffer_init_size=4096,  # replies are ~1.5 KB; grows if needed
            **extra,
        )

        async def close() -> None:
            listener.conn.closing = True
            transport.disconnect(graceful=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(transport.wait_disconnected(), 2)

        return listener.conn, close

    return open_one


# --------------------------------------------------------------------------- #
# websockets fallback client


def _make_websockets_opener(stats: Stats) -> Callable[[str], Any]:
    from websockets.asyncio.client import connect

    async def open_one(url: str) -> tuple[Conn, Callable[[], Any]]:
        ws = await connect(url, max_size=None, compression=None, open_timeout=60)
        conn = Conn(stats)
        loop = asyncio.get_running_loop()
        payload = update_payload().decode()
        conn.send = lambda: loop.create_task(ws.send(payload))

        async def reader() -> None:
            try:
                async for msg in ws:
                    if isinstance(msg, str):
                        conn.on_text(msg.encode())
            except Exception:
                pass
            conn.on_closed()

        task = loop.create_task(reader())

        async def close() -> None:
            conn.closing = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

        return conn, close

    return open_one


# --------------------------------------------------------------------------- #


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Open the connections, run warmup + measured window, return the report."""
    stats = Stats()
    client = args.client
    if client == "auto":
        try:
            import picows  # noqa: F401

            client = "picows"
        except ImportError:
            client = "websockets"
    opener = (
        _make_picows_opener(stats, args.local_addr)
        if client == "picows"
        else _make_websockets_opener(stats)
    )

    gate = asyncio.Semaphore(args.connect_concurrency)
    errors: dict[str, int] = {}

    async def connect_one() -> tuple[Conn, Callable[[], Any]] | None:
        async with gate:
            try:
                conn, close = await asyncio.wait_for(opener(args.url), 60)
                await asyncio.wait_for(conn.ready, 60)
            except Exception as exc:
                key = type(exc).__name__
                errors[key] = errors.get(key, 0) + 1
                return None
            if not conn.got_created:
                errors["closed before session.created"] = (
                    errors.get("closed before session.created", 0) + 1
                )
                await close()
                return None
            return conn, close

    t_connect = time.perf_counter()
    opened = await asyncio.gather(*(connect_one() for _ in range(args.connections)))
    conns = [c for c in opened if c is not None]
    connect_s = time.perf_counter() - t_connect

    result: dict[str, Any] = {
        "url": args.url,
        "client": client,
        "connections": args.connections,
        "connected": len(conns),
        "connect_errors": sum(errors.values()),
        "connect_error_kinds": errors,
        "connect_s": round(connect_s, 3),
        "warmup_s": args.warmup,
        "duration_s": args.duration,
    }
    if args.barrier:
        # Several load generators start their windows together: say we are
        # connected, then wait for the start time the runner writes.
        barrier = Path(args.barrier)
        (barrier / f"ready-{os.getpid()}").write_text(str(len(conns)))
        go = barrier / "go"
        deadline = time.monotonic() + args.barrier_timeout
        while not go.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        with contextlib.suppress(OSError, ValueError):
            args.start_at = float(go.read_text())
    if args.start_at:
        result["late_for_start_s"] = round(max(0.0, time.time() - args.start_at), 3)
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
    try:
        if conns:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i, (conn, _) in enumerate(conns):
                if conn.closed:
                    continue
                if args.rate:
                    # Spread the connections' slots evenly over one interval.
                    conn.interval = len(conns) / args.rate
                    conn.next_at = start + conn.interval * i / len(conns)
                    loop.call_at(conn.next_at, conn._fire_if_running)
                else:
                    conn.fire()
            await asyncio.sleep(args.warmup)

            cpu0 = tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
            own0 = time.process_time()
            sys0 = system_busy_seconds()
            stats.measuring = True
            t0 = time.perf_counter()
            dropped0 = stats.dropped
            await asyncio.sleep(args.duration)
            stats.measuring = False
            t1 = time.perf_counter()
            own1 = time.process_time()
            cpu1 = tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
            sys1 = system_busy_seconds()

            stats.stopping = True
            pending = [c.finished for c, _ in conns if c.awaiting]
            if pending:
                await asyncio.wait(pending, timeout=args.drain)
            await asyncio.sleep(0.2)  # catch stray extra replies
            window = t1 - t0
            lat = sorted(stats.latencies_ns)
            missing = sum(1 for c, _ in conns if c.awaiting)
            result.update(
                {
                    "window_s": round(window, 4),
                    "msgs": stats.measured,
                    "msgs_per_s": round(stats.measured / window, 1),
                    "p50_us": round(percentile(lat, 50) / 1000, 1),
                    "p90_us": round(percentile(lat, 90) / 1000, 1),
                    "p99_us": round(percentile(lat, 99) / 1000, 1),
                    "max_us": round(lat[-1] / 1000, 1) if lat else None,
                    "loadgen_cpu_util": round((own1 - own0) / window, 3),
                    "dropped_in_window": stats.dropped - dropped0,
                    "latency_hist": log_histogram(lat),
                }
            )
            if args.rate:
                # Paced: the rate asked for, and whether it was held (a server
                # that cannot keep up answers slower than its slots).
                result["rate"] = args.rate
                result["rate_held"] = stats.measured / window >= 0.95 * args.rate
            if args.server_pid:
                cpu = cpu1 - cpu0
                result["server_cpu_s"] = round(cpu, 3)
                result["server_cpu_util"] = round(cpu / window, 3)
                other = (sys1 - sys0) - cpu - (own1 - own0)
                result["other_cpu_util"] = round(max(0.0, other) / window, 3)
                result["server_cpu_us_per_msg"] = (
                    round(cpu * 1e6 / stats.measured, 2) if stats.measured else None
                )
        else:
            missing = 0
        result.update(
            {
                "sent": stats.sent,
                "replies": stats.replies,
                "missing_replies": missing,
                "wrong_type": stats.wrong_type,
                "unexpected_frames": stats.unexpected,
                "missing_session_created": stats.missing_created,
                "other_event_types": stats.wrong_types,
                "dropped": stats.dropped,
            }
        )
        result["in_order"] = bool(
            conns
            and stats.sent == stats.replies
            and stats.wrong_type == 0
            and stats.unexpected == 0
            and stats.missing_created == 0
            and all(c.sent == c.replies for c, _ in conns)
        )
        result["ok"] = bool(
            result["in_order"] and result["connect_errors"] == 0 and stats.dropped == 0
        )
    finally:
        await asyncio.gather(*(close() for _, close in conns), return_exceptions=True)
    return result


#: Bytes of instructions in every session.update (0: the shared payload).
INSTRUCTIONS_BYTES = [0]


def update_payload() -> bytes:
    """The session.update each connection sends; with ``--instructions-bytes``
    its instructions (and so the session.updated reply) grow to that size."""
    if not INSTRUCTIONS_BYTES[0]:
        return SESSION_UPDATE_BYTES
    event = json.loads(SESSION_UPDATE_BYTES)
    event["session"]["instructions"] = "x" * INSTRUCTIONS_BYTES[0]
    return json.dumps(event, separators=(",", ":")).encode()


#: Buckets per decade of the latency histogram (about 2.3 % wide).
HIST_PER_DECADE = 100


def log_histogram(sorted_ns: list[int]) -> dict[str, int]:
    """Latencies as counts per log bucket (key: bucket index as a string), so
    that several load generators' percentiles can be merged exactly enough."""
    hist: dict[str, int] = {}
    for ns in sorted_ns:
        key = str(int(math.log10(max(ns, 1)) * HIST_PER_DECADE))
        hist[key] = hist.get(key, 0) + 1
    return hist


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/v1/realtime?...")
    p.add_argument("--connections", type=int, default=10)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds")
    p.add_argument("--cpu", type=int, default=None, help="pin to this core")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--client", choices=["auto", "picows", "websockets"], default="auto")
    p.add_argument("--server-pid", type=int, default=None, help="measure its CPU")
    p.add_argument("--connect-concurrency", type=int, default=256)
    p.add_argument("--drain", type=float, default=5.0, help="wait for last replies")
    p.add_argument(
        "--instructions-bytes",
        type=int,
        default=0,
        help="instructions of this size in each update (large frames both ways)",
    )
    p.add_argument("--local-addr", default=None, help="source address (127.0.0.x)")
    p.add_argument(
        "--start-at", type=float, default=None, help="epoch s: start the loop then"
    )
    p.add_argument(
        "--barrier",
        default=None,
        help="directory: write ready-PID when connected, then wait for the "
        "start time in its file 'go'",
    )
    p.add_argument("--barrier-timeout", type=float, default=600.0)
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="paced mode: this many updates a second in all, spread over the "
        "connections (one in flight per connection); 0: each connection sends "
        "its next update as soon as the reply arrives (the default)",
    )
    args = p.parse_args(argv)
    if not args.url.startswith(("ws://127.", "ws://localhost", "ws://[::1]")):
        p.error("only loopback targets are allowed")
    if args.connections < 1 or args.duration <= 0 or args.warmup < 0:
        p.error("connections >= 1, duration > 0, warmup >= 0")
    if args.rate < 0:
        p.error("rate >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    INSTRUCTIONS_BYTES[0] = args.instructions_bytes
    pin_self(args.cpu)
    raise_nofile(args.connections + 1024)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
