"""Soak: many sessions streaming audio at real time, plus the fuzzer (issue 14).

Bounded and stops by itself. One ``openrealtime serve`` runs with server VAD
(``--vad``, default ``energy``: what 1,000 real-time sessions fit on a 2-core
machine; WebRTC and Silero score more slowly, see bench/README.md, "Soak")
and no transcription or speech.
Client processes open ``--sessions`` sessions that stream speech and silence
at real time (``--append-ms`` per append, server VAD on, no responses; each
committed turn deleted unless ``--keep-items``); a
fuzzer process sends mutated frames (the mutator of ``tests/test_fuzz.py``)
over a few connections, reconnecting when one is closed; a bystander sends a
``session.update`` every 100 ms and times the reply. Every ``--sample``
seconds the server's RSS (process tree) and open fds are sampled. At the end:
RSS and fds (start, peak, end), the bystander's p50/p99/max, turns detected,
fuzz frames sent, sessions dropped, and escaped exceptions (tracebacks in the
server's log).

    python bench/bench_soak.py [--sessions 1000] [--seconds 600]
        [--append-ms 100] [--vad energy] [--keep-items] [--fuzz-rate 200]
        [--json-out FILE]

The issue's run is the default (1,000 sessions, 10 minutes); ``--sessions``
and ``--seconds`` run it smaller.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchlib  # noqa: E402


def clip_frames(append_ms: int) -> list[str]:
    """The speech clip as append frames of ``append_ms`` each."""
    import voiceload

    clip = voiceload.speech_clip()
    step = 24000 * 2 * append_ms // 1000
    frames = []
    for i in range(0, len(clip) - step + 1, step):
        audio = base64.b64encode(clip[i : i + step]).decode()
        frames.append(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
    return frames


async def streamer(
    url: str, sessions: int, seconds: float, append_ms: int, keep_items: bool
) -> dict[str, Any]:
    import websockets

    frames = clip_frames(append_ms)
    counts = {"opened": 0, "dropped": 0, "speech_stopped": 0, "errors": 0}
    update = json.dumps(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "turn_detection": {
                            "type": "server_vad",
                            "create_response": False,
                        }
                    }
                },
            },
        }
    )
    end = time.monotonic() + seconds

    async def one(k: int) -> None:
        await asyncio.sleep(k * 0.01)  # spread the opening
        try:
            ws = await websockets.connect(url, open_timeout=60, max_queue=None)
        except Exception:
            counts["dropped"] += 1
            return
        counts["opened"] += 1
        try:
            await ws.send(update)

            async def read() -> None:
                async for frame in ws:
                    event = json.loads(frame)
                    kind = event["type"]
                    if kind == "input_audio_buffer.speech_stopped":
                        counts["speech_stopped"] += 1
                    elif kind == "input_audio_buffer.committed" and not keep_items:
                        # A long-running agent trims its context: without
                        # this each session keeps its audio (48 KB/s, up to
                        # Limits.max_audio_bytes) for conversation.item.retrieve.
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "conversation.item.delete",
                                    "item_id": event["item_id"],
                                }
                            )
                        )
                    elif kind == "error":
                        counts["errors"] += 1

            reader = asyncio.create_task(read())
            t0 = time.monotonic()
            sent = k % len(frames)
            n = 0
            while time.monotonic() < end and not reader.done():
                await ws.send(frames[sent % len(frames)])
                sent += 1
                n += 1
                delay = t0 + n * append_ms / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if reader.done():
                counts["dropped"] += 1
            reader.cancel()
        except Exception:
            counts["dropped"] += 1
        finally:
            await ws.close()

    await asyncio.gather(*(one(k) for k in range(sessions)))
    return counts


async def fuzzer(
    url: str, seconds: float, rate: float, connections: int
) -> dict[str, Any]:
    import websockets
    from tests.test_fuzz import Mutator

    counts = {"frames": 0, "reconnects": 0}
    end = time.monotonic() + seconds

    async def one(seed: int) -> None:
        mutator = Mutator(seed)
        while time.monotonic() < end:
            try:
                async with websockets.connect(
                    url, open_timeout=60, max_queue=None
                ) as ws:

                    async def drain() -> None:
                        async for _ in ws:
                            pass

                    reader = asyncio.create_task(drain())
                    while time.monotonic() < end and not reader.done():
                        await ws.send(mutator.frame().decode("utf-8", "replace"))
                        counts["frames"] += 1
                        await asyncio.sleep(connections / rate)
                    reader.cancel()
            except Exception:
                pass
            counts["reconnects"] += 1

    await asyncio.gather(*(one(seed) for seed in range(connections)))
    return counts


def fds(pid: int) -> int:
    total = 0
    for p in [pid, *benchlib._children(pid)]:
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def role_main(args: argparse.Namespace) -> int:
    benchlib.raise_nofile()
    if args.role == "stream":
        out = asyncio.run(
            streamer(
                args.url, args.sessions, args.seconds, args.append_ms, args.keep_items
            )
        )
    else:
        out = asyncio.run(fuzzer(args.url, args.seconds, args.fuzz_rate, 4))
    print(json.dumps(out), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--append-ms", type=int, default=100)
    parser.add_argument(
        "--vad", default="energy", choices=["webrtc", "silero", "energy"]
    )
    parser.add_argument(
        "--keep-items",
        action="store_true",
        help="do not delete each committed turn (its audio stays in the session)",
    )
    parser.add_argument("--fuzz-rate", type=float, default=200.0, help="frames/s")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--sample", type=float, default=10.0)
    parser.add_argument("--json-out")
    parser.add_argument("--role", choices=["stream", "fuzz"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return role_main(args)

    benchlib.warn_if_busy()
    benchlib.raise_nofile()
    cmd = [
        benchlib.PYTHON, "-m", "openrealtime", "serve", "--host", "127.0.0.1",
        "--port", "{port}", "--log-level", "warning", "--vad", args.vad,
        "--transcription", "none", "--speech", "none",
    ]  # fmt: skip
    server = benchlib.start_server(
        "openrealtime-soak", None, Path("/tmp/openrealtime-bench"), cmd_template=cmd
    )
    me = str(Path(__file__).resolve())
    procs: list[subprocess.Popen[str]] = []
    samples: list[dict[str, float]] = []
    try:
        rss0, fds0 = server.rss_bytes(), fds(server.pid)
        per = [
            args.sessions // args.clients + (i < args.sessions % args.clients)
            for i in range(args.clients)
        ]
        for n in per:
            procs.append(
                subprocess.Popen(
                    [benchlib.PYTHON, me, "--role", "stream", "--url", server.url,
                     "--sessions", str(n), "--seconds", str(args.seconds),
                     "--append-ms", str(args.append_ms),
                     *(["--keep-items"] if args.keep_items else [])],
                    stdout=subprocess.PIPE, text=True, start_new_session=True,
                )
            )  # fmt: skip
        procs.append(
            subprocess.Popen(
                [benchlib.PYTHON, me, "--role", "fuzz", "--url", server.url,
                 "--seconds", str(args.seconds), "--fuzz-rate", str(args.fuzz_rate)],
                stdout=subprocess.PIPE, text=True, start_new_session=True,
            )
        )  # fmt: skip
        import voiceload

        async def watch() -> list[float]:
            task = asyncio.create_task(
                voiceload.bystander(
                    server.url,
                    args.seconds,
                    interval=0.1,
                    warmup=min(10.0, args.seconds / 5),
                )
            )
            t0 = time.monotonic()
            while not task.done():
                await asyncio.sleep(min(args.sample, 1.0))
                if time.monotonic() - t0 >= args.sample * (len(samples) + 1):
                    samples.append(
                        {
                            "t": round(time.monotonic() - t0),
                            "rss_mb": server.rss_bytes() / 2**20,
                            "fds": fds(server.pid),
                            "load1": os.getloadavg()[0],
                        }
                    )
                    last = samples[-1]
                    print(
                        f"t={last['t']}s rss={last['rss_mb']:.0f} MB fds={last['fds']}"
                        f" load={last['load1']:.1f}",
                        flush=True,
                    )
            return task.result()

        rtts = asyncio.run(watch())
        outs = []
        for p in procs:
            out, _ = p.communicate(timeout=120)
            lines = out.strip().splitlines()
            outs.append(json.loads(lines[-1]) if lines else {"exit": p.returncode})
        # "End": once the server has closed the sessions (fds back near the
        # start, at most 30 s after the clients left).
        settle = time.monotonic() + 30
        while fds(server.pid) > fds0 + 100 and time.monotonic() < settle:
            time.sleep(0.5)
        time.sleep(2)
        rss_end, fds_end = server.rss_bytes(), fds(server.pid)
        load = os.getloadavg()
        log = server.log.read_text(errors="replace")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        server.stop()
    streams = outs[:-1]
    fuzz = outs[-1]
    ordered = sorted(rtts)
    report = {
        "sessions": args.sessions,
        "seconds": args.seconds,
        "append_ms": args.append_ms,
        "vad": args.vad,
        "opened": sum(s.get("opened", 0) for s in streams),
        "dropped": sum(s.get("dropped", 0) for s in streams),
        "speech_stopped": sum(s.get("speech_stopped", 0) for s in streams),
        "stream_errors": sum(s.get("errors", 0) for s in streams),
        "fuzz_frames": fuzz.get("frames"),
        "fuzz_reconnects": fuzz.get("reconnects"),
        "rss_mb": {
            "start": rss0 / 2**20,
            "peak": max((s["rss_mb"] for s in samples), default=0),
            "end": rss_end / 2**20,
        },
        "fds": {
            "start": fds0,
            "peak": max((s["fds"] for s in samples), default=0),
            "end": fds_end,
        },
        "bystander_ms": {
            "n": len(ordered),
            "p50": benchlib.percentile(ordered, 50),
            "p99": benchlib.percentile(ordered, 99),
            "max": ordered[-1] if ordered else float("nan"),
        },
        "loadavg_1_5_15_at_end": [round(x, 2) for x in load],
        "keep_items": args.keep_items,
        "escaped_exceptions": log.count("Traceback"),
        "error_log_lines": sum(
            1 for line in log.splitlines() if line.startswith("ERROR")
        ),
    }
    print()
    print(json.dumps(report, indent=2))
    benchlib.write_json(
        args.json_out,
        {"machine": benchlib.machine_info(), "report": report, "samples": samples},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
