"""WebRTC calls: CPU per second of two-way audio, and how many calls one
server process holds.

A server (``openrealtime serve``, energy VAD, the scripted responder replying
1.5 s of audio to every turn) is pinned to one core; this process, pinned to
the other, opens N aiortc calls. Each call's microphone loops 1 s of tone
(speech to the VAD) and 1.5 s of silence, so every call talks and is answered
all the time: Opus in and out, resampling both ways, VAD, turns, responses.
Every packet stays on loopback: the server offers 127.0.0.1 only
(``--webrtc-host``) and the clients gather there only (``tests/webrtc/helpers``
checks each offer and answer).

Over the measured window it reports, for each level N:

* server CPU as a share of one core, split into the event loop's thread and
  the other threads (aiortc's Opus decoder threads and its encoder executor);
* CPU milliseconds per second of call (server CPU / (N x seconds));
* reply audio frames received per second per call (50 is real time; fewer
  means the server fell behind) and turns answered;
* the round trip of a ``session.update`` on an unrelated WebSocket session,
  p50 and p99, against the same figure with no call (do calls stall others?).

No timing is asserted; the script exits 0 whenever it ran.

    python bench/bench_webrtc.py [--levels 0,1,4,8,16] [--duration 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.webrtc.helpers import Client  # noqa: E402

from benchlib import (  # noqa: E402
    PYTHON,
    SERVE,
    SESSION_UPDATE,
    cpu_plan,
    machine_info,
    pin_self,
    start_server,
    warn_if_busy,
    write_json,
)
from openrealtime import audio  # noqa: E402


FIXTURE = "default: {text: 'Fine, thank you.', audio: {ms: 1500}}\n"
TONE = audio.tone(1000, 24000, 440.0, 0.3)
PAUSE = audio.silence(1500, 24000)
UPDATE = json.dumps(SESSION_UPDATE)


def server_command(fixture: Path) -> list[str]:
    return [
        *SERVE,
        "--vad",
        "energy",
        "--transcription",
        "none",
        "--speech",
        "none",
        "--responder",
        "scripted",
        "--fixtures",
        str(fixture),
        # All on loopback: the calls' host candidates, and the checks answered.
        "--webrtc-host",
        "127.0.0.1",
        "--webrtc-peer-network",
        "127.0.0.0/8",
    ]


def thread_cpu(pid: int) -> tuple[float, float]:
    """(event loop thread, other threads) CPU seconds of the server."""
    process = psutil.Process(pid)
    children = process.children(recursive=True)
    target = children[-1] if children else process
    main = others = 0.0
    for thread in target.threads():
        seconds = thread.user_time + thread.system_time
        if thread.id == target.pid:
            main += seconds
        else:
            others += seconds
    return main, others


async def talk(client: Client, stop: asyncio.Event) -> None:
    """Loop the microphone: 1 s of tone, 1.5 s of silence."""
    while not stop.is_set():
        if client.mic.idle:
            client.mic.say(TONE + PAUSE)
        await asyncio.sleep(0.1)


PROBE = """
import asyncio, json, statistics, sys, time
import websockets

async def main(url, seconds, update):
    rtts = []
    async with websockets.connect(url) as ws:
        await ws.recv()  # session.created
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            began = time.perf_counter()
            await ws.send(update)
            await ws.recv()
            rtts.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.05)
    q = statistics.quantiles(rtts, n=100)
    print(json.dumps({"p50": statistics.median(rtts), "p99": q[98]}))

asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
"""


async def probe(url: str, seconds: float) -> dict[str, float]:
    """session.update round trips on an unrelated WebSocket session, from a
    process of its own (so the callers' load does not time it)."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON, "-c", PROBE, url, str(seconds), UPDATE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    result: dict[str, float] = json.loads(out)
    return result


async def level(
    port: int, pid: int, calls: int, warmup: float, duration: float
) -> dict[str, Any]:
    http = f"http://127.0.0.1:{port}"
    clients = [Client() for _ in range(calls)]
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        for client in clients:
            response = await client.connect(http)
            assert response.status_code == 201, response.text
            await client.wait_for("session.created", 20)
            tasks.append(asyncio.create_task(talk(client, stop)))
        ws_url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        await asyncio.sleep(warmup)
        probing = asyncio.create_task(probe(ws_url, duration))
        me = psutil.Process()
        mine0 = me.cpu_times().user + me.cpu_times().system
        heard0 = [len(c.heard) for c in clients]
        turns0 = [len(c.of("response.done")) for c in clients]
        cpu0 = psutil.Process(pid)
        total0 = sum(
            p.cpu_times().user + p.cpu_times().system
            for p in [cpu0, *cpu0.children(recursive=True)]
        )
        main0, others0 = thread_cpu(pid)
        began = time.monotonic()
        await asyncio.sleep(duration)
        elapsed = time.monotonic() - began
        total1 = sum(
            p.cpu_times().user + p.cpu_times().system
            for p in [cpu0, *cpu0.children(recursive=True)]
        )
        main1, others1 = thread_cpu(pid)
        mine1 = me.cpu_times().user + me.cpu_times().system
        rtt = await probing
        frames = [
            (len(c.heard) - h) / elapsed for c, h in zip(clients, heard0, strict=True)
        ]
        turns = sum(
            len(c.of("response.done")) - t for c, t in zip(clients, turns0, strict=True)
        )
        errors = sum(len(c.of("error")) for c in clients)
        cpu = total1 - total0
        return {
            "calls": calls,
            "seconds": round(elapsed, 2),
            "server_cpu_core_share": round(cpu / elapsed, 3),
            "loop_thread_share": round((main1 - main0) / elapsed, 3),
            "other_threads_share": round((others1 - others0) / elapsed, 3),
            "cpu_ms_per_call_second": round(cpu * 1000 / (calls * elapsed), 2)
            if calls
            else None,
            "reply_frames_per_s_min": round(min(frames), 1) if frames else None,
            "reply_frames_per_s_median": round(statistics.median(frames), 1)
            if frames
            else None,
            "turns_answered": turns,
            "errors": errors,
            "client_cpu_core_share": round((mine1 - mine0) / elapsed, 3),
            "ws_rtt_ms_p50": round(rtt["p50"], 2),
            "ws_rtt_ms_p99": round(rtt["p99"], 2),
        }
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="0,1,4,8,16")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true", help="levels 0,2; 4 s")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.duration, args.warmup = "0,2", 4.0, 2.0
    levels = [int(x) for x in args.levels.split(",")]
    server_core, client_core = cpu_plan()
    pin_self(client_core)
    warn_if_busy()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "reply.yaml"
        fixture.write_text(FIXTURE)
        for calls in levels:
            server = start_server(
                "openrealtime",
                server_core,
                Path(tmp),
                cmd_template=server_command(fixture),
            )
            try:
                time.sleep(1.0)  # imports settle
                result = asyncio.run(
                    level(server.port, server.pid, calls, args.warmup, args.duration)
                )
            finally:
                server.stop()
            results.append(result)
            print(json.dumps(result), flush=True)
    print()
    print(
        "| calls | server CPU (core) | loop thread | codec threads "
        "| CPU ms / call-second | reply frames/s (min) | turns | errors "
        "| other WS p50 / p99 ms | caller CPU (core) |"
    )
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        cells = [
            r["calls"],
            f"{r['server_cpu_core_share']:.0%}",
            f"{r['loop_thread_share']:.0%}",
            f"{r['other_threads_share']:.0%}",
            r["cpu_ms_per_call_second"] or "-",
            r["reply_frames_per_s_min"] or "-",
            r["turns_answered"],
            r["errors"],
            f"{r['ws_rtt_ms_p50']} / {r['ws_rtt_ms_p99']}",
            f"{r['client_cpu_core_share']:.0%}",
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    write_json(args.json_out, {"machine": machine_info(), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
