"""Throughput benchmark: each variant under the same load, rounds interleaved.

Server pinned to one core, load generator to another; server CPU time is read
from /proc around the measured window. Prints medians across rounds and ratios
against ``peer-fastapi`` and ``echo-picows``. Never asserts on timings.

By default each connection sends its next update when the reply arrives (a
closed loop: every variant runs as fast as it can). ``--rate R`` paces the
load instead: R updates a second in all, the same for every variant, so CPU
per exchange is compared at one offered load (a variant that cannot hold the
rate is marked in the ``rate held`` column).
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
    median,
    parse_variants,
    ratio,
    run_loadgen,
    start_server,
    table,
    warn_if_busy,
    write_json,
)


def run_variant(name: str, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """Start one server, load it, stop it; return the load generator report."""
    server_core, load_core = cpu_plan()
    server = start_server(name, server_core, log_dir)
    try:
        result = run_loadgen(
            server.url,
            args.connections,
            args.duration,
            args.warmup,
            load_core,
            server_pid=server.pid,
            extra=[
                "--instructions-bytes",
                str(args.instructions_bytes),
                "--rate",
                str(args.rate),
            ],
        )
        if not server.alive():
            result.setdefault("error", f"server died: {server.log_tail(5)}")
        return result
    finally:
        server.stop()


def summarize(
    variants: list[str], runs: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Median figures per variant."""
    out: list[dict[str, Any]] = []
    for name in variants:
        good = [r for r in runs.get(name, []) if "error" not in r and r.get("msgs")]
        row: dict[str, Any] = {"variant": name, "rounds": len(good)}
        for key in (
            "msgs_per_s",
            "p50_us",
            "p99_us",
            "server_cpu_us_per_msg",
            "server_cpu_util",
            "loadgen_cpu_util",
            "other_cpu_util",
        ):
            row[key] = median([float(r.get(key) or "nan") for r in good])
        row["ok"] = bool(good) and all(r.get("ok") for r in good)
        row["rate_held"] = all(r.get("rate_held", True) for r in good)
        row["errors"] = [r["error"] for r in runs.get(name, []) if "error" in r]
        out.append(row)
    by = {r["variant"]: r for r in out}
    for row in out:
        for ref in ("peer-fastapi", "echo-picows"):
            base = by.get(ref)
            row[f"thr_vs_{ref}"] = ratio(
                row["msgs_per_s"], base["msgs_per_s"] if base else None
            )
            row[f"cpu_vs_{ref}"] = ratio(
                row["server_cpu_us_per_msg"],
                base["server_cpu_us_per_msg"] if base else None,
            )
    return out


def render(
    rows: list[dict[str, Any]], unavailable: dict[str, str], paced: bool = False
) -> str:
    """The results table (with a ``rate held`` column when paced)."""
    headers = [
        "variant",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "srv CPU µs/msg",
        "srv CPU util",
        "gen CPU util",
        "other CPU",
        "thr ×peer",
        "CPU ×peer",
        "thr ×floor",
        "CPU ×floor",
        "ok",
        *(["rate held"] if paced else []),
    ]
    body: list[list[str]] = []
    for r in rows:
        if r["variant"] in unavailable:
            body.append([r["variant"], "unavailable", *["-"] * (len(headers) - 2)])
            continue
        body.append(
            [
                r["variant"],
                fmt(r["msgs_per_s"]),
                fmt(r["p50_us"]),
                fmt(r["p99_us"]),
                fmt(r["server_cpu_us_per_msg"], 1),
                fmt(r["server_cpu_util"], 2),
                fmt(r["loadgen_cpu_util"], 2),
                fmt(r["other_cpu_util"], 2),
                fmt(r["thr_vs_peer-fastapi"], 2),
                fmt(r["cpu_vs_peer-fastapi"], 2),
                fmt(r["thr_vs_echo-picows"], 2),
                fmt(r["cpu_vs_echo-picows"], 2),
                "yes" if r["ok"] else "NO",
                *([("yes" if r["rate_held"] else "NO")] if paced else []),
            ]
        )
    return table(headers, body)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 round, 2 s, 10 conns")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="measured seconds")
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--connections", type=int, default=None)
    p.add_argument("--variants", default=None, help="comma-separated names")
    p.add_argument("--json-out", default=None, help="write raw results here")
    p.add_argument(
        "--instructions-bytes",
        type=int,
        default=0,
        help="send updates whose instructions have this many bytes (large frames)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="paced load: this many updates a second in all, for every variant "
        "(0: closed loop, as fast as each variant answers)",
    )
    args = p.parse_args(argv)
    quick = {"rounds": 1, "duration": 2.0, "warmup": 0.5, "connections": 10}
    full = {"rounds": 3, "duration": 10.0, "warmup": 2.0, "connections": 50}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.variant_list = parse_variants(args.variants)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    exit_on_sigterm()
    warn_if_busy()
    variants: list[str] = args.variant_list
    info = machine_info()
    server_core, load_core = cpu_plan()
    print(
        f"machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}; "
        f"server core {server_core}, load generator core {load_core}"
    )
    print(
        f"{args.rounds} round(s) x {len(variants)} variant(s), {args.connections} "
        f"connections, {args.warmup}s warmup + {args.duration}s measured"
        + (f", paced at {args.rate:,.0f} updates/s" if args.rate else "")
    )
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    unavailable: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        for rnd in range(args.rounds):
            shift = rnd % len(variants)
            order = variants[shift:] + variants[:shift]
            for name in order:
                if name in unavailable:
                    continue
                try:
                    result = run_variant(name, args, Path(tmp))
                except ServerUnavailable as exc:
                    unavailable[name] = str(exc)
                    print(f"  round {rnd + 1} {name}: unavailable ({exc})")
                    continue
                runs[name].append(result)
                if "error" in result:
                    print(f"  round {rnd + 1} {name}: error {result['error']}")
                else:
                    print(
                        f"  round {rnd + 1} {name:>13}: "
                        f"{fmt(result.get('msgs_per_s'))} msgs/s, "
                        f"p50 {fmt(result.get('p50_us'))} µs, "
                        f"p99 {fmt(result.get('p99_us'))} µs, "
                        f"{fmt(result.get('server_cpu_us_per_msg'), 1)} CPU µs/msg, "
                        f"ok={result.get('ok')}"
                    )
                    if (result.get("other_cpu_util") or 0) > 0.2:
                        print(
                            f"    WARNING: other processes used "
                            f"{result['other_cpu_util']:.2f} cores meanwhile"
                        )
    rows = summarize(variants, runs)
    print()
    print(render(rows, unavailable, paced=bool(args.rate)))
    print(
        "\nthr ×peer = msgs/s ÷ peer-fastapi's; CPU ×peer = server CPU per msg ÷ "
        "peer-fastapi's (lower is better); ×floor: the same against echo-picows."
    )
    write_json(
        args.json_out,
        {
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k != "variant_list"},
            "runs": runs,
            "summary": rows,
            "unavailable": unavailable,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
