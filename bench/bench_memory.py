"""Memory per idle connection: server RSS growth for 1000 open sessions.

For each variant: start a fresh server, prime it with one session, read its
RSS (children included), open N connections that each do one update exchange,
read RSS again, divide by N. Median over several fresh servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import (
    SESSION_UPDATE_BYTES,
    Server,
    ServerUnavailable,
    cpu_plan,
    exit_on_sigterm,
    fmt,
    machine_info,
    median,
    parse_variants,
    pin_self,
    raise_nofile,
    start_server,
    table,
    warn_if_busy,
    write_json,
)


class Session:
    """One client connection that remembers the text messages it got."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()
        self.close: Callable[[], Any] = lambda: None
        self.send: Callable[[], Any] = lambda: None


async def open_session(url: str) -> Session:
    """Connect, read session.created, do one update exchange."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    session = Session()

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                session.messages.put_nowait(frame.get_payload_as_bytes())

    transport, _ = await ws_connect(Listener, url, websocket_handshake_timeout=60)
    session.close = transport.disconnect
    session.send = lambda: transport.send(WSMsgType.TEXT, SESSION_UPDATE_BYTES)
    try:
        created = await asyncio.wait_for(session.messages.get(), 30)
        if b'"session.created"' not in created:
            raise RuntimeError("first event is not session.created")
        session.send()
        updated = await asyncio.wait_for(session.messages.get(), 30)
        if b'"session.updated"' not in updated:
            raise RuntimeError("reply is not session.updated")
    except BaseException:
        transport.disconnect()
        raise
    return session


async def measure_once(server: Server, n: int, settle: float) -> dict[str, Any]:
    """RSS before/after ``n`` sessions on one fresh server."""
    prime = await open_session(server.url)
    prime.close()
    await asyncio.sleep(settle)
    before = server.rss_bytes()
    gate = asyncio.Semaphore(100)
    errors = 0

    async def one() -> Session | None:
        nonlocal errors
        async with gate:
            try:
                return await open_session(server.url)
            except Exception:
                errors += 1
                return None

    t0 = time.perf_counter()
    sessions = [s for s in await asyncio.gather(*(one() for _ in range(n))) if s]
    open_s = time.perf_counter() - t0
    await asyncio.sleep(settle)
    after = server.rss_bytes()
    for s in sessions:
        with contextlib.suppress(Exception):
            s.close()
    await asyncio.sleep(0.1)
    opened = len(sessions)
    return {
        "opened": opened,
        "errors": errors,
        "open_s": round(open_s, 3),
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "kb_per_conn": (after - before) / 1024 / opened if opened else float("nan"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200 conns, 1 server")
    p.add_argument("--connections", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None, help="fresh servers")
    p.add_argument("--settle", type=float, default=0.5, help="seconds before RSS")
    p.add_argument("--variants", default=None)
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    if args.connections is None:
        args.connections = 200 if args.quick else 1000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    args.variant_list = parse_variants(args.variants)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    exit_on_sigterm()
    warn_if_busy()
    raise_nofile(args.connections + 1024)
    server_core, client_core = cpu_plan()
    pin_self(client_core)
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    info = machine_info()
    print(
        f"machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}; "
        f"{args.connections} connections x {args.repeats} fresh server(s)"
    )
    results: dict[str, list[dict[str, Any]]] = {}
    unavailable: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        for name in args.variant_list:
            results[name] = []
            for _ in range(args.repeats):
                try:
                    server = start_server(name, server_core, Path(tmp))
                except ServerUnavailable as exc:
                    unavailable[name] = str(exc)
                    print(f"  {name}: unavailable ({exc})")
                    break
                try:
                    r = runner(measure_once(server, args.connections, args.settle))
                except Exception as exc:
                    r = {"error": f"{type(exc).__name__}: {exc}"}
                finally:
                    server.stop()
                results[name].append(r)
                if "error" in r:
                    print(f"  {name}: error {r['error']}")
                else:
                    print(
                        f"  {name:>13}: {r['opened']} open, "
                        f"{fmt(r['rss_before_mb'], 1)} -> "
                        f"{fmt(r['rss_after_mb'], 1)} MiB, "
                        f"{fmt(r['kb_per_conn'], 1)} KiB/conn"
                    )
    headers = ["variant", "KiB/conn (median)", "base RSS MiB", "open errors"]
    rows: list[list[str]] = []
    for name in args.variant_list:
        if name in unavailable:
            rows.append([name, "unavailable", "-", "-"])
            continue
        good = [r for r in results[name] if "error" not in r]
        rows.append(
            [
                name,
                fmt(median([r["kb_per_conn"] for r in good]), 1),
                fmt(median([r["rss_before_mb"] for r in good]), 1),
                str(sum(r["errors"] for r in good)),
            ]
        )
    print()
    print(table(headers, rows))
    write_json(
        args.json_out,
        {"machine": info, "results": results, "unavailable": unavailable},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
