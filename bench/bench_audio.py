"""The audio path: real-time input audio sessions per core, and reply audio cost.

Input (the default mode): N sessions stream speech at real-time pace to one
``openrealtime serve`` process pinned to one core, the way microphones do:
every 40 ms an ``input_audio_buffer.append`` with 40 ms of 24 kHz PCM16 in
base64 (2.6 KB frames). Server VAD is on (``--vad silero`` by default),
transcription off and ``create_response`` false, so the server does what a
voice front end does with every byte: decode the frame and the base64,
resample to the VAD's rate, score every frame, and send
``speech_started``/``speech_stopped`` (then ``committed`` and the item
events) for every turn. The audio is a loop of espeak-ng sentences between
silences; sessions start at phases spread over one loop, so the load is
steady. A bystander session sends a ``session.update`` every 50 ms.

A level N passes when, over the measured window:

* every session got every turn event it should (one ``speech_started`` and
  one ``speech_stopped`` per sentence, at the positions a single session
  gets, within one VAD frame), none missing, none extra;
* each arrived within ``--max-lag`` (100 ms) of its *true time*: the
  wall-clock moment the audio that decides it exists at the client. For
  ``speech_stopped`` that is the reported ``audio_end_ms``; for
  ``speech_started`` the end of the frame that crossed the threshold
  (``audio_start_ms + prefix_padding_ms + frame``). A 40 ms chunk is sent
  when its last sample exists, so even an infinitely fast server shows up to
  40 ms (plus the resampler's few ms of delay) here. When the client itself
  sent that chunk late (its core busy with other work), the lag counts from
  when it did send it; the lag from the true time alone is reported too
  (``true_lag_*``);
* the bystander's ``session.update`` p99 is under ``--max-update-p99``
  (50 ms);
* the client kept its pace (sends late by more than 20 ms at p99 make the
  level invalid, not failed: the client's core was not free).

The search doubles N until a level fails, then bisects. ``--breakdown``
times each stage of an append in this process (frame decode, base64,
resampling, VAD, the engine's bookkeeping, event encoding) per second of
audio of one session.

Output (``--output``): K sessions each ask for spoken replies
(``conversation.item.create`` with a sentence, then ``response.create``)
one after another; the server's CPU over the window divided by the seconds
of reply audio it sent is the CPU per second of reply audio, with the echo
responder's tone (``--speech none``: streaming alone) and with espeak-ng
speech (synthesis included).

Run: ``python bench/bench_audio.py [--quick] [--vads silero,webrtc,energy]
[--levels 8,16,...] [--breakdown] [--output]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import heapq
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchlib import (  # noqa: E402
    PYTHON,
    WS_PATH,
    ServerUnavailable,
    busy_cores,
    cpu_plan,
    exit_on_sigterm,
    fmt,
    machine_info,
    percentile,
    pin_self,
    raise_nofile,
    start_server,
    system_busy_seconds,
    table,
    warn_if_busy,
    write_json,
)


RATE = 24000
CHUNK_MS = 40
CHUNK_BYTES = RATE * 2 * CHUNK_MS // 1000
SILENCE_MS = 500  # silence_duration_ms of the sessions' server VAD
PREFIX_MS = 300
#: Frame length of each scorer in ms (the detector decides at a frame's end).
FRAME_MS = {"silero": 32.0, "webrtc": 30.0, "energy": 20.0}
SENTENCES = [
    "Hello there I would like to know the weather today",
    "Please book a table for two people at eight",
    "What time does the next train to the city leave",
]


# --------------------------------------------------------------------------- #
# The audio every session streams.


@dataclass
class Clip:
    """A loop of speech and silence, cut into 40 ms append frames."""

    pcm: bytes
    frames: list[bytes]
    speech: list[tuple[float, float]]  # (start ms, end ms) of each sentence

    @property
    def ms(self) -> float:
        return len(self.frames) * CHUNK_MS


def make_clip() -> Clip:
    """Sentences from espeak-ng between 1.2 s silences, 40 ms aligned."""
    from openrealtime import audio
    from openrealtime.voice.tts import EspeakSynthesizer

    synth = EspeakSynthesizer()
    if not synth.available():
        raise SystemExit("bench_audio needs espeak-ng (scripts/apt-packages.txt)")
    gap = audio.silence(1200, RATE)
    pcm = bytearray(gap)
    speech: list[tuple[float, float]] = []
    for sentence in SENTENCES:
        said = b"".join(synth.synthesize(sentence, voice="alloy", speed=1.0))
        start = len(pcm) / 2 / RATE * 1000
        pcm += said
        speech.append((start, len(pcm) / 2 / RATE * 1000))
        pcm += gap
    pcm += b"\0" * (-len(pcm) % CHUNK_BYTES)
    frames = [
        json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(pcm[i : i + CHUNK_BYTES]).decode(),
            },
            separators=(",", ":"),
        ).encode()
        for i in range(0, len(pcm), CHUNK_BYTES)
    ]
    return Clip(bytes(pcm), frames, speech)


def session_update(create_response: bool = False) -> bytes:
    """Server VAD on, transcription off, no automatic responses."""
    return json.dumps(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "transcription": None,
                        "turn_detection": {
                            "type": "server_vad",
                            "silence_duration_ms": SILENCE_MS,
                            "prefix_padding_ms": PREFIX_MS,
                            "create_response": create_response,
                            "interrupt_response": False,
                        },
                    }
                },
            },
        }
    ).encode()


# --------------------------------------------------------------------------- #
# The client side (picows + uvloop, one process on its own core).


@dataclass
class Stream:
    """One streaming session: what it sent, when, and what came back."""

    index: int
    start: float = 0.0  # perf_counter of audio position 0
    sent: int = 0  # frames sent
    late_ms: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # perf_counter per frame
    # (kind, reported ms, arrival perf_counter)
    turns: list[tuple[str, int, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    closed: bool = False
    send: Callable[[bytes], None] = lambda data: None


async def _open(url: str, on_text: Callable[[bytes], None]) -> tuple[Any, Any]:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                on_text(frame.get_payload_as_bytes())

    return await ws_connect(Listener, url, websocket_handshake_timeout=60)


async def run_level(
    url: str, clip: Clip, n: int, warmup_s: float, window_s: float
) -> dict[str, Any]:
    """N streams plus a bystander against one server; return the raw results."""
    from picows import WSMsgType

    text = WSMsgType.TEXT
    update = session_update()
    streams = [Stream(i) for i in range(n)]
    ready: list[asyncio.Future[None]] = []
    transports: list[Any] = []
    loop = asyncio.get_running_loop()

    def handler(stream: Stream, fut: asyncio.Future[None]) -> Callable[[bytes], None]:
        state = {"n": 0}

        def on_text(data: bytes) -> None:
            now = time.perf_counter()
            state["n"] += 1
            head = data[:64]
            if b"speech_st" in head:
                event = json.loads(data)
                if event["type"] == "input_audio_buffer.speech_started":
                    stream.turns.append(("started", event["audio_start_ms"], now))
                else:
                    stream.turns.append(("stopped", event["audio_end_ms"], now))
            elif head.startswith(b'{"type":"error"'):
                stream.errors.append(data[:300].decode(errors="replace"))
            elif b'"session.updated"' in head and not fut.done():
                fut.set_result(None)

        return on_text

    gate = asyncio.Semaphore(64)

    async def connect(stream: Stream) -> None:
        fut = loop.create_future()
        ready.append(fut)
        async with gate:
            transport, _ = await _open(url, handler(stream, fut))
        transports.append(transport)
        stream.send = lambda data, t=transport: t.send(text, data)
        stream.send(update)
        await asyncio.wait_for(fut, 60)

    await asyncio.gather(*(connect(s) for s in streams))

    # The bystander: a session.update every 50 ms, round trip timed.
    rtts: list[float] = []
    pending: dict[str, float] = {}
    by_ready = loop.create_future()

    def on_bystander(data: bytes) -> None:
        if b'"session.updated"' in data[:64] and pending:
            rtts.append(time.perf_counter() - pending.pop("t"))
        elif b'"session.created"' in data[:64] and not by_ready.done():
            by_ready.set_result(None)

    by_transport, _ = await _open(url, on_bystander)
    transports.append(by_transport)
    await asyncio.wait_for(by_ready, 30)

    period = clip.ms / 1000
    t0 = time.perf_counter() + 0.2
    for s in streams:
        s.start = t0 + period * s.index / n
    measure_from = t0 + period + warmup_s
    end = measure_from + window_s
    frames = clip.frames
    n_frames = len(frames)
    chunk_s = CHUNK_MS / 1000

    async def bystander() -> None:
        while time.perf_counter() < end:
            if not pending:
                pending["t"] = time.perf_counter()
                by_transport.send(text, update)
            await asyncio.sleep(0.05)

    async def pump() -> None:
        # Each stream's frame k leaves at start + (k + 1) * 40 ms: when its
        # last sample exists. One loop serves every stream, soonest first.
        heap = [(s.start + chunk_s, s.index) for s in streams]
        heapq.heapify(heap)
        while True:
            now = time.perf_counter()
            if now >= end:
                return
            while heap[0][0] <= now:
                due, i = heap[0]
                s = streams[i]
                s.send(frames[s.sent % n_frames])
                s.sent_at.append(now)
                if now >= measure_from:
                    s.late_ms.append((now - due) * 1000)
                s.sent += 1
                heapq.heapreplace(heap, (s.start + (s.sent + 1) * chunk_s, i))
            await asyncio.sleep(max(0.0, heap[0][0] - time.perf_counter()))

    cpu0 = busy0 = 0.0
    server_pid = _SERVER_PID.get("pid")

    async def mark() -> None:
        nonlocal cpu0, busy0
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu0 = tree_cpu(server_pid)
        busy0 = system_busy_seconds()

    own0 = time.process_time()
    await asyncio.gather(pump(), bystander(), mark())
    cpu1 = tree_cpu(server_pid)
    busy1 = system_busy_seconds()
    own1 = time.process_time()
    await asyncio.sleep(1.0)  # the last events of the window
    for t in transports:
        with contextlib.suppress(Exception):
            t.disconnect()
    await asyncio.sleep(0.2)
    server_cpu = cpu1 - cpu0
    return {
        "streams": streams,
        "rtts": rtts,
        "measure_from": measure_from,
        "end": end,
        "server_cpu_s": server_cpu,
        "other_cpu_util": max(0.0, (busy1 - busy0) - server_cpu - (own1 - own0))
        / window_s,
    }


_SERVER_PID: dict[str, int] = {}


def tree_cpu(pid: int | None) -> float:
    from benchlib import tree_cpu_seconds

    return tree_cpu_seconds(pid) if pid else 0.0


def expected_turns(clip: Clip, frame_ms: float) -> list[tuple[str, float]]:
    """(kind, true time in ms from the clip's start) for one loop of the clip."""
    out: list[tuple[str, float]] = []
    for start, stop in clip.speech:
        out.append(("started", start))
        out.append(("stopped", stop + SILENCE_MS))
    return out


def judge(
    raw: dict[str, Any], clip: Clip, vad: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Lags, missing and extra turn events, bystander latency: pass or not."""
    frame = FRAME_MS[vad]
    period_ms = clip.ms
    true_lags: list[float] = []
    lags: list[float] = []
    missing = extra = misplaced = 0
    lo, hi = raw["measure_from"], raw["end"]
    streams: list[Stream] = raw["streams"]
    errors = sum(len(s.errors) for s in streams)
    for s in streams:
        # Turn events of this stream, on the stream's own audio timeline.
        got: list[tuple[str, float, float]] = []  # kind, true ms, arrival
        for kind, ms, arrival in s.turns:
            true_ms = ms + PREFIX_MS + frame if kind == "started" else float(ms)
            got.append((kind, true_ms, arrival))
        # Which loops of the clip fall wholly inside the window, by true time.
        for _kind, true_ms, arrival in got:
            when = s.start + true_ms / 1000
            if lo <= when <= hi:
                true_lags.append((arrival - when) * 1000)
                # The frame that holds the deciding audio: when the client
                # actually sent it, if it was late (its core was not free).
                k = max(0, math.ceil(true_ms / CHUNK_MS) - 1)
                sent = s.sent_at[k] if k < len(s.sent_at) else when
                lags.append((arrival - max(when, sent)) * 1000)
        for loop_k in range(int((hi - s.start) * 1000 // period_ms) + 1):
            for kind, ms in expected_turns(clip, frame):
                t_ms = loop_k * period_ms + ms
                when = s.start + t_ms / 1000
                if not lo + 0.5 <= when <= hi - 0.5:
                    continue
                # A detection within 400 ms of the sentence edge counts.
                near = [
                    g for g in got if g[0] == kind and abs(g[1] - t_ms) <= 400 + frame
                ]
                if not near:
                    missing += 1
                elif len(near) > 1:
                    extra += len(near) - 1
        in_window = [g for g in got if lo + 0.5 <= s.start + g[1] / 1000 <= hi - 0.5]
        matched = 0
        for kind, true_ms, _ in in_window:
            rel = true_ms % period_ms
            if any(
                k == kind
                and abs(rel - ms) <= 400 + frame
                or k == kind
                and abs(rel + period_ms - ms) <= 400 + frame
                for k, ms in expected_turns(clip, frame)
            ):
                matched += 1
        misplaced += len(in_window) - matched
    lags.sort()
    true_lags.sort()
    rtt = sorted(x * 1000 for x in raw["rtts"])
    late = sorted(x for s in streams for x in s.late_ms)
    n = len(streams)
    window = hi - lo
    result = {
        "sessions": n,
        "turn_events": len(lags),
        "missing": missing,
        "extra": extra,
        "misplaced": misplaced,
        "errors": errors,
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": lags[-1] if lags else float("nan"),
        "true_lag_p99_ms": percentile(true_lags, 99),
        "true_lag_max_ms": true_lags[-1] if true_lags else float("nan"),
        "update_p50_ms": percentile(rtt, 50),
        "update_p99_ms": percentile(rtt, 99),
        "updates": len(rtt),
        "send_late_p99_ms": percentile(late, 99),
        "server_cpu_util": raw["server_cpu_s"] / window,
        "server_cpu_ms_per_session_s": raw["server_cpu_s"] * 1000 / (n * window),
        "other_cpu_util": raw["other_cpu_util"],
    }
    result["client_ok"] = bool(late) and result["send_late_p99_ms"] <= 20
    result["ok"] = bool(
        lags
        and missing == 0
        and extra == 0
        and misplaced == 0
        and errors == 0
        and result["lag_max_ms"] <= args.max_lag
        and result["update_p99_ms"] < args.max_update_p99
    )
    return result


#: Run the server as ``PYTHON WRAP serve ...`` (a script calling
#: ``openrealtime.cli.main``), for diagnostics; set by ``--wrap``.
WRAP: list[str] = []


def serve_cmd(vad: str, speech: str = "none") -> list[str]:
    return [
        PYTHON,
        *(WRAP or ["-m", "openrealtime"]),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "--vad",
        vad,
        "--transcription",
        "none",
        "--speech",
        speech,
    ]


def niced(args: argparse.Namespace, cmd: list[str]) -> list[str]:
    """The command under ``nice -n --nice`` when one is given."""
    return ["nice", "-n", str(args.nice), *cmd] if args.nice else cmd


def search(vad: str, clip: Clip, args: argparse.Namespace, tmp: Path) -> list[dict]:
    """Run the levels (given, or doubling then bisecting) for one VAD."""
    server_core, client_core = cpu_plan()
    pin_self(client_core)
    import uvloop

    server = start_server(
        f"openrealtime-{vad}",
        server_core,
        tmp,
        cmd_template=niced(args, serve_cmd(vad)),
    )
    _SERVER_PID["pid"] = server.pid
    url = f"ws://127.0.0.1:{server.port}{WS_PATH}"
    results: list[dict[str, Any]] = []
    tried: dict[int, dict[str, Any]] = {}

    def run(n: int) -> dict[str, Any]:
        if n in tried:
            return tried[n]
        for attempt in range(args.retries + 1):
            busy = busy_cores(0.3)
            raw = uvloop.run(run_level(url, clip, n, args.warmup, args.window))
            r = judge(raw, clip, vad, args)
            r["vad"] = vad
            r["busy_before"] = busy
            r["attempt"] = attempt + 1
            print(
                f"  {vad:>6} N={n:>4}: {'PASS' if r['ok'] else 'fail'}"
                f" lag p50/p99/max {fmt(r['lag_p50_ms'])}/{fmt(r['lag_p99_ms'])}/"
                f"{fmt(r['lag_max_ms'])} ms (from true time alone: max "
                f"{fmt(r['true_lag_max_ms'])}), missing {r['missing']}, extra "
                f"{r['extra']}+{r['misplaced']}, update p99 "
                f"{fmt(r['update_p99_ms'], 1)} ms, server CPU "
                f"{fmt(r['server_cpu_util'], 2)} "
                f"({fmt(r['server_cpu_ms_per_session_s'], 1)} ms/session-s), "
                f"client late p99 {fmt(r['send_late_p99_ms'], 1)} ms, other CPU "
                f"{fmt(r['other_cpu_util'], 2)}",
                flush=True,
            )
            if not server.alive():
                raise ServerUnavailable(f"server died: {server.log_tail(5)}")
            # A failure while other processes took the CPU is retried.
            if r["ok"] or r["other_cpu_util"] < 0.3 and r["client_ok"]:
                break
            print("    (other processes busy or client late: repeating)")
        tried[n] = r
        results.append(r)
        return r

    try:
        if args.levels:
            for n in args.levels:
                run(n)
        else:
            good, bad = 0, None
            n = args.start
            while n <= args.max_n:
                if run(n)["ok"]:
                    good, n = n, n * 2
                else:
                    bad = n
                    break
            while bad is not None and bad - good > max(1, good // 10):
                mid = (good + bad) // 2
                if run(mid)["ok"]:
                    good = mid
                else:
                    bad = mid
    finally:
        server.stop()
        if WRAP:
            print(server.log_tail(10))
    return results


# --------------------------------------------------------------------------- #
# Where the time goes, per second of one session's audio (in this process).


def breakdown(clip: Clip, vads: list[str]) -> list[list[str]]:
    """Time each stage of an append on the clip; µs per audio second."""
    from threadpoolctl import threadpool_limits

    # As in a voice worker: one BLAS thread (more would spin on the other
    # core and be counted in process_time).
    threadpool_limits(1)
    from openrealtime import audio
    from openrealtime.codec import decode_client_event, encode
    from openrealtime.models.server_events import (
        InputAudioBufferSpeechStartedEvent,
    )
    from openrealtime.server.pipeline import Pipeline
    from openrealtime.session import Session

    frames = clip.frames
    seconds = clip.ms / 1000
    texts = [f.decode() for f in frames]
    b64 = [decode_client_event(t).audio for t in texts]  # type: ignore[union-attr]
    raws = [base64.b64decode(b) for b in b64]

    def per_s(fn: Callable[[], object], reps: int = 3) -> float:
        best = float("inf")
        for _ in range(reps):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        return best / seconds * 1e6

    rows: list[list[str]] = []
    decode_us = per_s(lambda: [decode_client_event(t) for t in texts])
    b64_us = per_s(lambda: [base64.b64decode(b, validate=True) for b in b64])
    rows.append(["frame JSON decode (msgspec)", "all", fmt(decode_us)])
    rows.append(["base64 decode", "all", fmt(b64_us)])
    ev = InputAudioBufferSpeechStartedEvent(
        event_id="event_x", audio_start_ms=1000, item_id="item_x"
    )
    t = time.process_time()
    for _ in range(20000):
        encode(ev)
    enc_each_us = (time.process_time() - t) / 20000 * 1e6
    for vad in vads:
        factory = Pipeline(vad=vad).scorer_factory()
        scorer = factory(RATE) if factory else None
        rate = scorer.rate if scorer else RATE
        if rate != RATE:
            rs = audio.Resampler(RATE, rate)
            res_us = per_s(lambda rs=rs: [rs.process(r) for r in raws])
            rs = audio.Resampler(RATE, rate)
            pcm = b"".join(rs.process(r) for r in raws)
            rows.append([f"resample 24 -> {rate // 1000} kHz (soxr)", vad, fmt(res_us)])
        else:
            pcm = clip.pcm
        if scorer is not None:
            size = scorer.frame_samples * 2
            chunks = [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]
            vad_us = per_s(lambda s=scorer, cs=chunks: [s.score(c) for c in cs], reps=2)
            rows.append([f"VAD scoring ({type(scorer).__name__})", vad, fmt(vad_us)])
            batch = getattr(type(scorer), "score_batch", None)
            if batch is not None:
                # What a loaded worker does: a call every 10 ms carries a
                # frame of each of ~32 sessions (100 sessions of 31.25
                # frames per second), scored together.
                streams = [factory(RATE) for _ in range(32)]  # type: ignore[misc]

                def batched(
                    b: Any = batch, ss: list[Any] = streams, cs: list[bytes] = chunks
                ) -> None:
                    for c in cs:
                        b([(one, c) for one in ss])

                batch_us = per_s(batched, reps=2) / len(streams)
                rows.append(
                    [
                        f"VAD scoring, 32 sessions per call ({type(scorer).__name__}"
                        ".score_batch)",
                        vad,
                        fmt(batch_us),
                    ]
                )

        def engine(f: Callable[[int], Any] | None = factory) -> None:
            s = Session(now=time.time(), scorer_factory=f)
            s.receive_text(session_update(), time.time())
            s.data_to_send()
            for t in texts:
                s.receive_text(t, 0.0)
            s.data_to_send()

        total = per_s(engine, reps=2)
        rows.append(
            ["engine total: Session.receive_text of every append", vad, fmt(total)]
        )
    # Per turn: started, stopped, committed, item added, item done (5 events).
    turns_per_s = len(clip.speech) / seconds
    rows.append(
        [
            "event encoding (5 events per turn)",
            "all",
            fmt(enc_each_us * 5 * turns_per_s, 1),
        ]
    )
    return rows


# --------------------------------------------------------------------------- #
# Output: CPU per second of reply audio.


async def run_output(
    url: str, k: int, window_s: float, server_pid: int
) -> dict[str, Any]:
    """K sessions asking for spoken replies back to back."""
    from picows import WSMsgType

    text = WSMsgType.TEXT
    loop = asyncio.get_running_loop()
    audio_bytes = [0]
    responses = [0]
    stop = [False]
    item = json.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": " ".join(SENTENCES)}],
            },
        }
    ).encode()
    create = json.dumps(
        {"type": "response.create", "response": {"output_modalities": ["audio"]}}
    ).encode()
    measuring = [False]

    async def session() -> None:
        done: asyncio.Queue[None] = asyncio.Queue()

        def on_text(data: bytes) -> None:
            head = data[:48]
            if head.startswith(b'{"type":"response.output_audio.delta"'):
                if measuring[0]:
                    b64 = json.loads(data)["delta"]
                    audio_bytes[0] += len(b64) * 3 // 4 - b64.count("=", -2)
            elif head.startswith(b'{"type":"response.done"'):
                if measuring[0]:
                    responses[0] += 1
                done.put_nowait(None)

        transport, _ = await _open(url, on_text)
        transport.send(text, item)
        try:
            while not stop[0]:
                transport.send(text, create)
                await done.get()
        finally:
            transport.disconnect()

    tasks = [loop.create_task(session()) for _ in range(k)]
    await asyncio.sleep(2.0)
    cpu0 = tree_cpu(server_pid)
    measuring[0] = True
    t0 = time.perf_counter()
    await asyncio.sleep(window_s)
    measuring[0] = False
    cpu1 = tree_cpu(server_pid)
    window = time.perf_counter() - t0
    stop[0] = True
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    audio_s = audio_bytes[0] / 2 / RATE
    cpu = cpu1 - cpu0
    return {
        "sessions": k,
        "responses": responses[0],
        "audio_s": audio_s,
        "audio_s_per_s": audio_s / window,
        "server_cpu_util": cpu / window,
        "cpu_ms_per_audio_s": cpu * 1000 / audio_s if audio_s else float("nan"),
    }


def output(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    server_core, client_core = cpu_plan()
    pin_self(client_core)
    import uvloop

    out = []
    for speech in ("none", "espeak"):
        server = start_server(
            f"openrealtime-out-{speech}",
            server_core,
            tmp,
            cmd_template=niced(args, serve_cmd("energy", speech)),
        )
        try:
            url = f"ws://127.0.0.1:{server.port}{WS_PATH}"
            r = uvloop.run(
                run_output(url, args.output_sessions, args.window, server.pid)
            )
        finally:
            server.stop()
        r["speech"] = speech
        print(
            f"  output speech={speech}: {fmt(r['audio_s_per_s'], 1)} s of reply audio "
            f"per s over {r['sessions']} sessions, server CPU "
            f"{fmt(r['server_cpu_util'], 2)}: {fmt(r['cpu_ms_per_audio_s'], 2)} ms "
            "CPU per second of reply audio",
            flush=True,
        )
        out.append(r)
    return out


# --------------------------------------------------------------------------- #


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="silero, N=2,4, short")
    p.add_argument("--vads", default="silero", help="comma list: silero,webrtc,energy")
    p.add_argument("--levels", default=None, help="comma list of N (else search)")
    p.add_argument("--start", type=int, default=None, help="first N of the search")
    p.add_argument("--max-n", type=int, default=4096)
    p.add_argument("--warmup", type=float, default=None, help="s after all started")
    p.add_argument("--window", type=float, default=None, help="measured seconds")
    p.add_argument("--retries", type=int, default=1, help="repeats when disturbed")
    p.add_argument("--max-lag", type=float, default=100.0, help="ms")
    p.add_argument("--max-update-p99", type=float, default=50.0, help="ms")
    p.add_argument("--breakdown", action="store_true", help="time each stage")
    p.add_argument("--output", action="store_true", help="reply audio CPU")
    p.add_argument("--output-sessions", type=int, default=10)
    p.add_argument("--no-input", action="store_true", help="skip the N search")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the server and the client at this nice level (negative needs "
        "root): on a machine shared with other work, -10 lets them have their "
        "cores most of the time, as if dedicated",
    )
    p.add_argument("--wrap", default=None, help="run the server as PYTHON WRAP serve")
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    args.vad_list = [v.strip() for v in args.vads.split(",") if v.strip()]
    for v in args.vad_list:
        if v not in FRAME_MS:
            p.error(f"unknown VAD {v!r}")
    if args.quick:
        args.levels = args.levels or "2,4"
        args.window = args.window or 6.0
        args.warmup = 0.5 if args.warmup is None else args.warmup
    args.window = args.window or 12.0
    args.warmup = 1.0 if args.warmup is None else args.warmup
    args.levels = [int(x) for x in args.levels.split(",")] if args.levels else None
    if args.start is None:
        args.start = {"silero": 4, "webrtc": 50, "energy": 50}[args.vad_list[0]]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    warn_if_busy()
    raise_nofile(8192)
    if args.nice:
        os.nice(args.nice)
    if args.wrap:
        WRAP.append(args.wrap)
    info = machine_info()
    server_core, client_core = cpu_plan()
    print(
        f"machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}; "
        f"server core {server_core}, client core {client_core}"
    )
    clip = make_clip()
    print(
        f"clip: {clip.ms / 1000:.2f} s, {len(clip.speech)} sentences, "
        f"{len(clip.frames)} appends of {CHUNK_MS} ms ({len(clip.frames[0])} B)"
    )
    report: dict[str, Any] = {"machine": info, "args": vars(args)}
    if args.breakdown:
        rows = breakdown(clip, args.vad_list)
        print()
        print(
            "Where an append's time goes (this process, µs of CPU per second "
            "of one session's audio):"
        )
        print(table(["stage", "VAD", "µs per audio s"], rows))
        report["breakdown"] = rows
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        if not args.no_input:
            for vad in args.vad_list:
                results += search(vad, clip, args, Path(tmp))
        if args.output:
            report["output"] = output(args, Path(tmp))
    if results:
        headers = [
            "VAD",
            "N",
            "ok",
            "lag p50 ms",
            "lag p99 ms",
            "lag max ms",
            "missing",
            "extra",
            "update p99 ms",
            "srv CPU",
            "CPU ms/session-s",
            "client late p99",
            "other CPU",
        ]
        rows = [
            [
                r["vad"],
                str(r["sessions"]),
                "yes" if r["ok"] else "NO",
                fmt(r["lag_p50_ms"]),
                fmt(r["lag_p99_ms"]),
                fmt(r["lag_max_ms"]),
                str(r["missing"]),
                str(r["extra"] + r["misplaced"]),
                fmt(r["update_p99_ms"], 1),
                fmt(r["server_cpu_util"], 2),
                fmt(r["server_cpu_ms_per_session_s"], 1),
                fmt(r["send_late_p99_ms"], 1),
                fmt(r["other_cpu_util"], 2),
            ]
            for r in sorted(results, key=lambda r: (r["vad"], r["sessions"]))
        ]
        print()
        print(table(headers, rows))
        for vad in args.vad_list:
            good = [r["sessions"] for r in results if r["vad"] == vad and r["ok"]]
            print(f"max sessions on one core with {vad}: {max(good) if good else 0}")
    report["input"] = results
    write_json(args.json_out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
