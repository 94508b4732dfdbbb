"""Fairness: a bystander's round trip with and without voice load (issue 14).

One ``openrealtime serve`` (Silero VAD, PocketSphinx, no speech) runs; a
bystander client sends ``session.update`` every 10 ms and times each reply.
Each round measures it twice, side by side:

* ``idle``: the bystander alone;
* ``loaded``: meanwhile ``--streams`` clients stream speech at real time
  (40 ms appends, server VAD and input transcription on) and one client
  commits the largest buffer allowed (32 MiB, transcription on): the
  issue's fairness scenario. With ``--appends``, another client also sends
  three 11 MiB appends with server VAD on. Every attacker is a process of
  its own (``bench/voiceload.py``).

Reports p50/p99/max per phase (medians over ``--rounds``), the loaded/idle
ratios, the server's CPU (its process tree) during each window, and what the
streams got back (turns, transcripts). No assertion on timings.

    python bench/bench_fairness.py [--quick] [--rounds 3] [--seconds 8]
        [--streams 2] [--appends] [--driver picows|asgi] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
import voiceload  # noqa: E402


def server_cmd(driver: str) -> list[str]:
    cmd = [
        *benchlib.SERVE,
        "--vad",
        "silero",
        "--transcription",
        "pocketsphinx",
        "--speech",
        "none",
    ]
    if driver != "picows":
        cmd += ["--driver", driver]
    return cmd


def attack(url: str, role: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [benchlib.PYTHON, str(benchlib.BENCH_DIR / "voiceload.py"), role, "--url", url]
        + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=300)
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": proc.returncode}


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50": benchlib.percentile(ordered, 50),
        "p99": benchlib.percentile(ordered, 99),
        "max": ordered[-1],
    }


def measure(
    server: benchlib.Server,
    seconds: float,
    loaded: bool,
    streams: int,
    appends: bool = False,
) -> dict[str, Any]:
    url = server.url
    procs: dict[str, subprocess.Popen[str]] = {}
    if loaded:
        procs["stream"] = attack(
            url, "stream", "--seconds", str(seconds + 2), "--sessions", str(streams)
        )
        time.sleep(1.0)
        procs["commit"] = attack(url, "commit", "--mib", "32")
        if appends:
            procs["append"] = attack(
                url, "append", "--count", "3", "--mib", "11", "--hold", str(seconds)
            )
    cpu0 = server.cpu_seconds()
    t0 = time.monotonic()
    samples = asyncio.run(voiceload.bystander(url, seconds, interval=0.01, warmup=0.5))
    elapsed = time.monotonic() - t0
    cpu = server.cpu_seconds() - cpu0
    out: dict[str, Any] = {
        **stats(samples),
        "server_cpu_util": cpu / elapsed,
        "attackers": {name: result(p) for name, p in procs.items()},
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 4 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--appends", action="store_true", help="3 x 11 MiB too")
    parser.add_argument("--driver", default="picows", choices=["picows", "asgi"])
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 4.0
    benchlib.warn_if_busy()
    log_dir = Path("/tmp/openrealtime-bench")
    server = benchlib.start_server(
        "openrealtime-voice", None, log_dir, cmd_template=server_cmd(args.driver)
    )
    rounds: list[dict[str, Any]] = []
    try:
        # Warm the voice workers and the server before measuring.
        asyncio.run(voiceload.bystander(server.url, 1.0))
        for r in range(args.rounds):
            idle = measure(server, args.seconds, False, args.streams)
            loaded = measure(server, args.seconds, True, args.streams, args.appends)
            rounds.append({"idle": idle, "loaded": loaded})
            print(
                f"round {r + 1}: idle p99 {idle['p99']:.1f} ms, "
                f"loaded p99 {loaded['p99']:.1f} ms",
                flush=True,
            )
    finally:
        server.stop()

    def med(phase: str, key: str) -> float:
        return benchlib.median([r[phase][key] for r in rounds])

    rows = []
    for phase in ("idle", "loaded"):
        rows.append(
            [
                phase,
                benchlib.fmt(med(phase, "n")),
                benchlib.fmt(med(phase, "p50"), 2),
                benchlib.fmt(med(phase, "p99"), 2),
                benchlib.fmt(med(phase, "max"), 1),
                benchlib.fmt(med(phase, "server_cpu_util"), 2),
            ]
        )
    rows.append(
        [
            "loaded / idle",
            "",
            f"{benchlib.ratio(med('loaded', 'p50'), med('idle', 'p50')):.2f}x",
            f"{benchlib.ratio(med('loaded', 'p99'), med('idle', 'p99')):.2f}x",
            f"{benchlib.ratio(med('loaded', 'max'), med('idle', 'max')):.2f}x",
            "",
        ]
    )
    print()
    print(
        f"bystander session.update round trip, ms (median of {len(rounds)} rounds, "
        f"{args.seconds:g} s each, driver {args.driver}, {args.streams} streams, "
        f"largest commit{', 3 x 11 MiB appends' if args.appends else ''})"
    )
    print(
        benchlib.table(
            ["phase", "samples", "p50", "p99", "max", "server CPU (cores)"], rows
        )
    )
    last = rounds[-1]["loaded"]["attackers"]
    print()
    print("what the attackers got (last round):")
    for name, outcome in last.items():
        print(f"  {name}: {json.dumps(outcome)[:300]}")
    benchlib.write_json(
        args.json_out,
        {"machine": benchlib.machine_info(), "args": vars(args), "rounds": rounds},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
