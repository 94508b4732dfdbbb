"""Scaling: throughput and p99 at 1, 10, 100, 1000 and 10000 connections.

Every connection runs the update loop; the largest N holds all its sessions
open and busy for ``--hold`` seconds. Reports connect errors and dropped
connections. A fresh server per (N, variant), variants interleaved per N.

Past one process's file descriptor limit (RLIMIT_NOFILE: this script raises
it with ``resource.setrlimit`` to N + 1024, the hard limit too where the
kernel allows it, and the server and load generators inherit it), the server
runs ``--workers`` processes and the load comes from ``--clients``
load generators, each from its own source address (127.0.0.2, .3, ...) so
that each has its own ~28,000 ephemeral ports. The generators start their
windows at one agreed wall-clock time; their latency histograms are merged.
``--plot FILE`` draws msgs/s and p99 against N for every variant (PNG).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchlib import (
    VARIANTS,
    ServerUnavailable,
    _children,
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
from loadgen import HIST_PER_DECADE


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
    p.add_argument(
        "--workers",
        default="auto",
        help="openrealtime server processes: a number, or auto (one per "
        "per_process connections, see --per-process)",
    )
    p.add_argument(
        "--clients",
        default="auto",
        help="load generator processes: a number, or auto (as --workers)",
    )
    p.add_argument(
        "--per-process",
        type=int,
        default=None,
        help="connections per process when they do not fit in one "
        "(default: half of RLIMIT_NOFILE - 1024)",
    )
    p.add_argument("--plot", default=None, help="write the scaling plot (PNG) here")
    p.add_argument(
        "--from-json", default=None, help="plot earlier --json-out files (a,b,...)"
    )
    p.add_argument("--note", default="", help="a second title line for the plot")
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


def _processes(setting: str, n: int, fit: int, per_process: int) -> int:
    """How many processes share ``n`` connections: one while they fit in one
    (``fit``), else enough for ``per_process`` each (half the limit: accepts
    do not spread evenly over workers)."""
    if setting != "auto":
        return max(1, int(setting))
    return 1 if n <= fit else math.ceil(n / per_process)


def _merge(reports: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """One result from several load generators' reports."""
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        return {"error": "; ".join(errors)}
    hist: dict[int, int] = {}
    for r in reports:
        for key, count in (r.get("latency_hist") or {}).items():
            hist[int(key)] = hist.get(int(key), 0) + count
    total = sum(hist.values())

    def pct(q: float) -> float:
        if not total:
            return float("nan")
        rank, seen = q / 100 * total, 0
        for key in sorted(hist):
            seen += hist[key]
            if seen >= rank:
                return 10 ** ((key + 0.5) / HIST_PER_DECADE) / 1000  # µs
        return float("nan")  # pragma: no cover

    def add(key: str) -> int:
        return int(sum(r.get(key) or 0 for r in reports))

    return {
        "connections": n,
        "connected": add("connected"),
        "connect_errors": add("connect_errors"),
        "connect_s": max(r.get("connect_s") or 0 for r in reports),
        "late_for_start_s": max(r.get("late_for_start_s") or 0 for r in reports),
        "msgs": add("msgs"),
        "msgs_per_s": sum(r.get("msgs_per_s") or 0 for r in reports),
        "p50_us": pct(50),
        "p99_us": pct(99),
        "sent": add("sent"),
        "replies": add("replies"),
        "missing_replies": add("missing_replies"),
        "dropped": add("dropped"),
        "loadgen_cpu_util": sum(r.get("loadgen_cpu_util") or 0 for r in reports),
        "in_order": all(r.get("in_order") for r in reports),
        "ok": all(r.get("ok") for r in reports),
        "generators": len(reports),
    }


def run_level(
    name: str, n: int, duration: float, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """One fresh server of ``name`` under ``n`` connections."""
    server_core, load_core = cpu_plan()
    fit, per = args.fit, args.per_process
    ours = name.startswith("openrealtime")
    workers = _processes(args.workers, n, fit, per) if ours else 1
    clients = _processes(args.clients, n, fit, per)
    if workers == 1 and n > fit:
        return {"error": f"one process holds at most {fit} connections here"}
    template = list(VARIANTS[name])
    if workers > 1:
        template += ["--workers", str(workers)]
    server = start_server(name, server_core, tmp, cmd_template=template)
    try:
        if workers > 1:
            # Workers start after the master's port opens: wait for them all.
            deadline = time.monotonic() + 60
            while len(_children(server.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(3.0)
        pids = set(_children(server.pid))
        drain = ["--drain", str(max(5.0, n / 500))]
        if clients == 1:
            r = run_loadgen(
                server.url,
                n,
                duration,
                args.warmup,
                load_core,
                server_pid=server.pid,
                extra=drain,
            )
            r["generators"] = 1
        else:
            # Every generator connects its share, then all start together.
            barrier = tmp / f"barrier-{name}-{n}"
            barrier.mkdir()
            shares = [n // clients + (i < n % clients) for i in range(clients)]
            limit = duration + args.warmup + 300 + n / 250
            t_start = time.monotonic()
            with ThreadPoolExecutor(clients) as pool:
                futures = [
                    pool.submit(
                        run_loadgen,
                        server.url,
                        share,
                        duration,
                        args.warmup,
                        load_core,
                        None,
                        [
                            *drain,
                            "--connect-concurrency",
                            str(max(16, 256 // clients)),
                            "--local-addr",
                            f"127.0.0.{2 + i}",
                            "--barrier",
                            str(barrier),
                        ],
                        limit,
                    )
                    for i, share in enumerate(shares)
                ]
                deadline = time.monotonic() + 600
                while (
                    len(list(barrier.glob("ready-*"))) < clients
                    and time.monotonic() < deadline
                    and not any(f.done() for f in futures)
                ):
                    time.sleep(0.1)
                connected_s = time.monotonic() - t_start
                start_at = time.time() + 1.0
                (barrier / "go.tmp").write_text(f"{start_at:.3f}")
                (barrier / "go.tmp").rename(barrier / "go")
                # The server's CPU and memory over the common window.
                time.sleep(max(0.0, start_at + args.warmup - time.time()))
                cpu0, t0 = server.cpu_seconds(), time.perf_counter()
                time.sleep(duration)
                cpu1, t1 = server.cpu_seconds(), time.perf_counter()
                rss = server.rss_bytes()
                reports = [f.result() for f in futures]
            r = _merge(reports, n)
            r["per_generator"] = [
                {k: v for k, v in g.items() if k != "latency_hist"} for g in reports
            ]
            if "error" not in r:
                r["server_cpu_util"] = round((cpu1 - cpu0) / (t1 - t0), 3)
                r["server_cpu_us_per_msg"] = (
                    round((cpu1 - cpu0) * 1e6 / r["msgs"], 2) if r["msgs"] else None
                )
                r["server_rss_mb"] = round(rss / 2**20, 1)
                r["all_connected_s"] = round(connected_s, 1)
        r["workers"] = workers
        # uvicorn's supervisor kills and replaces a worker that misses its
        # health check: every connection of that worker drops.
        r["workers_replaced"] = len(pids - set(_children(server.pid)))
        if r["workers_replaced"] or r.get("dropped"):
            r["server_log_tail"] = server.log_tail(40)
            print(r["server_log_tail"])
        if not server.alive():
            r.setdefault("error", f"server died: {server.log_tail(5)}")
    finally:
        server.stop()
    return r


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.from_json:
        # One or more earlier --json-out files (comma-separated): merged, so
        # the 50,000 level run on its own joins the curve of the others.
        merged: dict[str, dict[str, dict[str, Any]]] = {}
        for name in args.from_json.split(","):
            data = json.loads(Path(name).read_text())
            for variant, by_n in data["results"].items():
                merged.setdefault(variant, {}).update(by_n)
        plot(merged, args.plot or "scale.png", args.note)
        if args.json_out:
            write_json(args.json_out, {"results": merged})
        return 0
    exit_on_sigterm()
    warn_if_busy()
    limit = raise_nofile(max(args.level_list) + 1024)
    args.fit = max(100, limit - 1024)
    if args.per_process is None:
        args.per_process = max(100, args.fit // 2)
    server_core, load_core = cpu_plan()
    info = machine_info()
    print(
        f"machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}; "
        f"levels {args.level_list}, {args.duration}s each, max level held "
        f"{args.hold}s; RLIMIT_NOFILE {limit}, {args.per_process} connections "
        "per process at most"
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
                    r = run_level(name, n, duration, args, Path(tmp))
                except ServerUnavailable as exc:
                    unavailable[name] = str(exc)
                    print(f"  {name}: unavailable ({exc})")
                    continue
                results[name][n] = r
                if "error" in r:
                    print(f"  N={n:>5} {name:>13}: error {r['error'][:300]}")
                else:
                    print(
                        f"  N={n:>5} {name:>13}: {r['connected']} connected, "
                        f"{fmt(r.get('msgs_per_s'))} msgs/s, "
                        f"p99 {fmt(r.get('p99_us'))} µs, "
                        f"dropped {r.get('dropped')}, ok={r.get('ok')}"
                        + (
                            f", {r['workers']} workers, {r['generators']} generators, "
                            f"server RSS {fmt(r.get('server_rss_mb'))} MiB"
                            if r.get("generators", 1) > 1
                            else ""
                        ),
                        flush=True,
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
    data = {
        "machine": info,
        "results": {k: {str(n): r for n, r in v.items()} for k, v in results.items()},
        "unavailable": unavailable,
    }
    write_json(args.json_out, data)
    if args.plot:
        plot(data["results"], args.plot, "")
    return 0


def plot(results: dict[str, dict[str, dict[str, Any]]], path: str, note: str) -> None:
    """msgs/s and p99 against N, one line per variant, log-log (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, by_n in results.items():
        pts = sorted(
            (int(n), r) for n, r in by_n.items() if "error" not in r and r.get("msgs")
        )
        if not pts:
            continue
        ns = [n for n, _ in pts]
        style = {"marker": "o", "linewidth": 2 if name == "openrealtime" else 1.2}
        ax1.plot(ns, [r["msgs_per_s"] for _, r in pts], label=name, **style)
        ax2.plot(ns, [r["p99_us"] / 1000 for _, r in pts], label=name, **style)
        for n, r in pts:
            if (r.get("workers") or 1) > 1:
                ax1.annotate(
                    f"{r['workers']} workers",
                    (n, r["msgs_per_s"]),
                    textcoords="offset points",
                    xytext=(-30, 8),
                    fontsize=8,
                )
    ax1.set(
        xscale="log",
        xlabel="concurrent connections",
        ylabel="session.update exchanges per second",
        title="Throughput (higher is better)",
    )
    ax2.set(
        xscale="log",
        yscale="log",
        xlabel="concurrent connections",
        ylabel="p99 round trip (ms)",
        title="p99 latency (lower is better)",
    )
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(
        "bench_scale.py: every connection loops session.update -> session.updated"
        + (f"\n{note}" if note else ""),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
