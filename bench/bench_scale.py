"""Scaling: throughput and p99 at 1, 10, 100, 1000 and 10000 connections.

Every connection runs the update loop; the largest N holds all its sessions
open and busy for ``--hold`` seconds. Reports connect errors and dropped
connections. A fresh server per (N, variant), variants interleaved per N.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import (
    ServerUnavailable,
    cpu_plan,
    exit_on_sigterm,
    fmt,
    machine_info,
    parse_variants,
    raise_nofile,
    run_loadgen,
    start_server,
    table,
    warn_if_busy,
    write_json,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N <= 100, 2 s each")
    p.add_argument("--levels", default="1,10,100,1000,10000")
    p.add_argument("--duration", type=float, default=None, help="seconds per N")
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--hold", type=float, default=60.0, help="seconds at max N")
    p.add_argument("--variants", default=None)
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    if args.quick:
        levels = [n for n in levels if n <= 100] or [1]
        args.duration = args.duration or 2.0
        args.hold = min(args.hold, args.duration)
        args.warmup = 0.5 if args.warmup is None else args.warmup
    args.duration = args.duration or 5.0
    args.warmup = 1.0 if args.warmup is None else args.warmup
    args.level_list = levels
    args.variant_list = parse_variants(args.variants)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    exit_on_sigterm()
    warn_if_busy()
    limit = raise_nofile(max(args.level_list) + 1024)
    server_core, load_core = cpu_plan()
    info = machine_info()
    print(
        f"machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}; "
        f"levels {args.level_list}, {args.duration}s each, max level held "
        f"{args.hold}s; RLIMIT_NOFILE {limit}"
    )
    results: dict[str, dict[int, dict[str, Any]]] = {v: {} for v in args.variant_list}
    unavailable: dict[str, str] = {}
    top = max(args.level_list)
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        for i, n in enumerate(args.level_list):
            shift = i % len(args.variant_list)
            order = args.variant_list[shift:] + args.variant_list[:shift]
            duration = args.hold if n == top else args.duration
            for name in order:
                if name in unavailable:
                    continue
                try:
                    server = start_server(name, server_core, Path(tmp))
                except ServerUnavailable as exc:
                    unavailable[name] = str(exc)
                    print(f"  {name}: unavailable ({exc})")
                    continue
                try:
                    r = run_loadgen(
                        server.url,
                        n,
                        duration,
                        args.warmup,
                        load_core,
                        server_pid=server.pid,
                        extra=["--drain", str(max(5.0, n / 500))],
                    )
                    if not server.alive():
                        r.setdefault("error", f"server died: {server.log_tail(5)}")
                finally:
                    server.stop()
                results[name][n] = r
                if "error" in r:
                    print(f"  N={n:>5} {name:>13}: error {r['error'][:300]}")
                else:
                    print(
                        f"  N={n:>5} {name:>13}: {r['connected']} connected, "
                        f"{fmt(r.get('msgs_per_s'))} msgs/s, "
                        f"p99 {fmt(r.get('p99_us'))} µs, "
                        f"dropped {r.get('dropped')}, ok={r.get('ok')}"
                    )
                    if (r.get("other_cpu_util") or 0) > 0.2:
                        print(
                            f"    WARNING: other processes used "
                            f"{r['other_cpu_util']:.2f} cores meanwhile"
                        )
    headers = [
        "variant",
        "N",
        "connected",
        "conn errors",
        "dropped",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "srv CPU µs/msg",
        "ok",
    ]
    rows: list[list[str]] = []
    for name in args.variant_list:
        if name in unavailable:
            rows.append([name, "-", "unavailable", *["-"] * 7])
            continue
        for n in args.level_list:
            r = results[name].get(n)
            if r is None or "error" in r:
                rows.append([name, str(n), "error", *["-"] * 7])
                continue
            rows.append(
                [
                    name,
                    str(n),
                    str(r["connected"]),
                    str(r["connect_errors"]),
                    str(r["dropped"]),
                    fmt(r.get("msgs_per_s")),
                    fmt(r.get("p50_us")),
                    fmt(r.get("p99_us")),
                    fmt(r.get("server_cpu_us_per_msg"), 1),
                    "yes" if r.get("ok") else "NO",
                ]
            )
    print()
    print(table(headers, rows))
    write_json(
        args.json_out,
        {
            "machine": info,
            "results": {
                k: {str(n): r for n, r in v.items()} for k, v in results.items()
            },
            "unavailable": unavailable,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
