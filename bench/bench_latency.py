"""Single-connection latency: sequential session.update -> session.updated.

For each variant, one connection does N round trips (after warmup) through a
raw ``websockets`` client, the real openai-python client, and a picows client.
Reports median and p99 and each server's overhead over the echo-picows floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

from benchlib import (
    SESSION_UPDATE,
    SESSION_UPDATE_BYTES,
    ServerUnavailable,
    cpu_plan,
    exit_on_sigterm,
    fmt,
    machine_info,
    parse_variants,
    percentile,
    pin_self,
    start_server,
    table,
    warn_if_busy,
    write_json,
)


Trip = Callable[[], Awaitable[str]]
CLIENTS = ["websockets", "openai", "picows"]


#: Unmeasured round trips last at least this long (``--warmup-seconds``):
#: a count alone (200 trips, 15 ms) ended before what a server starts in
#: its first second had finished, and the p99 measured that instead.
WARMUP_SECONDS = 2.0


class Warmup(NamedTuple):
    """Unmeasured round trips: at least ``trips`` of them, for at least
    ``seconds``."""

    trips: int
    seconds: float


async def measure(trip: Trip, warmup: Warmup, iterations: int) -> dict[str, Any]:
    """Time ``iterations`` round trips after the ``warmup`` ones."""
    wrong = 0
    done = 0
    until = time.monotonic() + warmup.seconds
    while done < warmup.trips or time.monotonic() < until:
        if await trip() != "session.updated":
            wrong += 1
        done += 1
    samples: list[int] = []
    perf = time.perf_counter_ns
    for _ in range(iterations):
        t0 = perf()
        kind = await trip()
        samples.append(perf() - t0)
        if kind != "session.updated":
            wrong += 1
    samples.sort()
    return {
        "n": iterations,
        "p50_us": percentile(samples, 50) / 1000,
        "p99_us": percentile(samples, 99) / 1000,
        "min_us": samples[0] / 1000,
        "wrong_replies": wrong,
    }


async def via_websockets(url: str, warmup: Warmup, iterations: int) -> dict[str, Any]:
    """Raw websockets client; replies are parsed with json.loads."""
    from websockets.asyncio.client import connect

    text = SESSION_UPDATE_BYTES.decode()
    async with connect(url, max_size=None, compression=None) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "session.created", first["type"]

        async def trip() -> str:
            await ws.send(text)
            return str(json.loads(await ws.recv())["type"])

        return await measure(trip, warmup, iterations)


async def via_openai(port: int, warmup: Warmup, iterations: int) -> dict[str, Any]:
    """The openai-python SDK's realtime connection (pydantic-parsed events)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="x", websocket_base_url=f"ws://127.0.0.1:{port}/v1")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        first = await conn.recv()
        assert first.type == "session.created", first.type

        async def trip() -> str:
            await conn.send(SESSION_UPDATE)  # type: ignore[arg-type]
            return str((await conn.recv()).type)

        result = await measure(trip, warmup, iterations)
    await client.close()
    return result


async def via_picows(url: str, warmup: Warmup, iterations: int) -> dict[str, Any]:
    """picows client: the cheapest client side, closest to server cost."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    loop = asyncio.get_running_loop()
    box: dict[str, asyncio.Future[bytes]] = {"f": loop.create_future()}

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT and not box["f"].done():
                box["f"].set_result(frame.get_payload_as_bytes())

    transport, _ = await ws_connect(Listener, url)
    try:
        first = json.loads(await box["f"])
        assert first["type"] == "session.created", first["type"]

        async def trip() -> str:
            box["f"] = loop.create_future()
            transport.send(WSMsgType.TEXT, SESSION_UPDATE_BYTES)
            data = await box["f"]
            return str(json.loads(data)["type"])

        return await measure(trip, warmup, iterations)
    finally:
        transport.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(transport.wait_disconnected(), 2)


async def run_clients(
    url: str, port: int, clients: list[str], warmup: Warmup, iterations: int
) -> dict[str, dict[str, Any]]:
    """Every client against one running server."""
    out: dict[str, dict[str, Any]] = {}
    for name in clients:
        try:
            if name == "websockets":
                coro = via_websockets(url, warmup, iterations)
            elif name == "openai":
                coro = via_openai(port, warmup, iterations)
            else:
                coro = via_picows(url, warmup, iterations)
            out[name] = await asyncio.wait_for(coro, 120)
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200 round trips")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=None,
        help=f"warm up at least this long (default {WARMUP_SECONDS}; --quick 0.3)",
    )
    p.add_argument("--variants", default=None)
    p.add_argument("--clients", default=",".join(CLIENTS))
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    if args.iterations is None:
        args.iterations = 200 if args.quick else 2000
    if args.warmup is None:
        args.warmup = 50 if args.quick else 200
    if args.warmup_seconds is None:
        args.warmup_seconds = 0.3 if args.quick else WARMUP_SECONDS
    args.variant_list = parse_variants(args.variants)
    args.client_list = [c for c in args.clients.split(",") if c]
    bad = set(args.client_list) - set(CLIENTS)
    if bad:
        p.error(f"unknown client(s) {sorted(bad)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    exit_on_sigterm()
    warn_if_busy()
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
        f"{args.iterations} sequential round trips after {args.warmup} warmup "
        f"(and at least {args.warmup_seconds} s of it)"
    )
    results: dict[str, dict[str, dict[str, Any]]] = {}
    unavailable: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        for name in args.variant_list:
            try:
                server = start_server(name, server_core, Path(tmp))
            except ServerUnavailable as exc:
                unavailable[name] = str(exc)
                print(f"  {name}: unavailable ({exc})")
                continue
            try:
                results[name] = runner(
                    run_clients(
                        server.url,
                        server.port,
                        args.client_list,
                        Warmup(args.warmup, args.warmup_seconds),
                        args.iterations,
                    )
                )
            finally:
                server.stop()
            for client, r in results[name].items():
                if "error" in r:
                    print(f"  {name} via {client}: error {r['error']}")
    floor = results.get("echo-picows", {})
    headers = ["variant", "client", "p50 µs", "p99 µs", "min µs", "p50 over floor"]
    rows: list[list[str]] = []
    for name in args.variant_list:
        if name in unavailable:
            rows.append([name, "-", "unavailable", "-", "-", "-"])
            continue
        for client, r in results.get(name, {}).items():
            if "error" in r:
                rows.append([name, client, "error", "-", "-", "-"])
                continue
            base = floor.get(client, {}).get("p50_us")
            over = r["p50_us"] - base if base is not None else float("nan")
            rows.append(
                [
                    name,
                    client,
                    fmt(r["p50_us"], 1),
                    fmt(r["p99_us"], 1),
                    fmt(r["min_us"], 1),
                    fmt(over, 1) + ("" if r["wrong_replies"] == 0 else " (BAD)"),
                ]
            )
    print()
    print(table(headers, rows))
    print("\np50 over floor = this p50 minus echo-picows' p50 with the same client.")
    write_json(
        args.json_out,
        {"machine": info, "results": results, "unavailable": unavailable},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
