"""Voice quality on real speech: WER, intelligibility, latency and RTF per engine.

Three parts (issue 16), printed as Markdown tables for ``bench/README.md``:

* ``asr``: each recognizer (faster-whisper tiny.en, PocketSphinx) on human
  recordings (Debian ``pocketsphinx-testdata``: LibriVox sentences, "cards",
  ``goforward.raw``, ``something.raw``, a TIDIGITS string; ``beckett.wav``
  from the ``useful-moonshine-onnx`` wheel when installed) and on synthetic
  speech (flite and espeak-ng voices): word error rate, CPU seconds per
  audio second (RTF) and model load time.
* ``tts``: each synthesizer and each of the ten Realtime voice names, read
  back by a Whisper listener (tiny.en, beam 5): WER, RTF, time to the first
  chunk.
* ``live``: a live server with ``openrealtime serve``'s default pipeline
  (whatever ``auto`` picks: Silero, Whisper, flite) and the default
  ``silence_duration_ms`` (200), echo responder; each human clip streamed in
  20 ms chunks at real-time pace. Per turn: speech end (last chunk of the
  clip sent) to ``speech_stopped``, to the transcript, to the first reply
  audio; p50/p90; WER of the transcripts.
* ``idle``: ``openrealtime serve`` with no flags (its own process), 50 idle
  sessions each timing a round trip (``input_audio_buffer.clear`` to
  ``input_audio_buffer.cleared``) every 200 ms, first while nobody talks,
  then while one session talks (the human clips at real time, echo replies
  with audio, as in ``live``): p50/p99/max over all round trips, the worst
  session's max, and how many sessions ever waited 50 ms or more.

Run: ``python bench/bench_voice_asr.py [--part asr|tts|live|idle|all] [--quick]``.
Needs the ``whisper`` extra, flite, espeak-ng and pocketsphinx-testdata
(``scripts/apt-packages.txt``); beckett.wav needs
``pip install --no-deps useful-moonshine-onnx`` (its other dependencies are
not needed to read one WAV file).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import statistics
import sys
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openrealtime import audio  # noqa: E402


DATA = Path("/usr/share/pocketsphinx/test/data")
CHUNK = 960  # 20 ms of 24 kHz PCM16

#: Human clips: (name, path or loader, reference).
HUMAN: list[tuple[str, str, str]] = [
    (
        "librivox-0870",
        "librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
        "and mister john dashwood had then leisure to consider how much there "
        "might be prudently in his power to do for them",
    ),
    (
        "librivox-0880",
        "librivox/sense_and_sensibility_01_austen_64kb-0880.wav",
        "he was not an ill disposed young man",
    ),
    (
        "librivox-0890",
        "librivox/sense_and_sensibility_01_austen_64kb-0890.wav",
        "unless to be rather cold hearted and rather selfish is to be ill disposed",
    ),
    (
        "librivox-0920",
        "librivox/sense_and_sensibility_01_austen_64kb-0920.wav",
        "had he married a more amiable woman he might have been made still more "
        "respectable than he was",
    ),
    (
        "librivox-0930",
        "librivox/sense_and_sensibility_01_austen_64kb-0930.wav",
        "he might even have been made amiable himself",
    ),
    ("cards-001", "cards/001.wav", "ten of clubs"),
    ("cards-002", "cards/002.wav", "four queen of clubs"),
    ("cards-003", "cards/003.wav", "seven of clubs"),
    ("cards-004", "cards/004.wav", "five five"),
    (
        "cards-005",
        "cards/005.wav",
        "eight of spades four of clubs seven of hearts",
    ),
    ("goforward", "goforward.raw", "go forward ten meters"),
    ("something", "something.raw", "go somewhere and do something"),
    ("tidigits", "tidigits/dhd.2934z.raw", "two nine three four zero"),
    (
        "beckett",
        "moonshine:beckett.wav",
        "ever tried ever failed no matter try again fail again fail better",
    ),
]

SENTENCES = [
    "Can you remind me to call my sister tomorrow morning?",
    "The weather is sunny and warm today.",
    "Please book a quiet table near the window tonight.",
    "How far away is the moon from the earth?",
    "Turn off the lights in the kitchen and lock the front door.",
]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SAME = {"mr": "mister", "mrs": "missus", "meter": "meters", "metres": "meters"}


def _number(token: str) -> list[str]:
    n = int(token)
    if len(token) > 2 and not (len(token) == 4 and token[:2] in ("19", "20")):
        return [_ONES[int(d)] for d in token]  # digit strings: one word each
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    return [_ONES[int(d)] for d in token]


def normalize(text: str) -> list[str]:
    """Lower case, no punctuation, hyphens split, numbers as words."""
    text = text.lower().replace("-", " ")
    out: list[str] = []
    for token in re.sub(r"[^a-z0-9' ]", " ", text).split():
        token = token.strip("'")
        if token.isdigit():
            out += _number(token)
        elif token:
            out.append(_SAME.get(token, token))
    return out


def word_edits(reference: list[str], hypothesis: list[str]) -> int:
    """Words inserted, dropped or changed: Levenshtein distance over words
    (also the piper tests' measure of a voice understood)."""
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words), on normalized words."""
    ref = normalize(reference)
    return word_edits(ref, normalize(hypothesis)), len(ref)


def load_clip(path: str) -> tuple[bytes, int] | None:
    """A human clip as PCM16 and its rate (None when not installed)."""
    if path.startswith("moonshine:"):
        try:
            from importlib.metadata import PackageNotFoundError, distribution

            dist = distribution("useful-moonshine-onnx")
        except PackageNotFoundError:
            return None
        full = Path(str(dist.locate_file("moonshine_onnx/assets/" + path[10:])))
    else:
        full = DATA / path
    if not full.exists():
        return None
    if full.suffix == ".raw":
        return full.read_bytes(), 16000
    with wave.open(str(full)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


def human_clips() -> Iterator[tuple[str, bytes, int, str]]:
    for name, path, ref in HUMAN:
        clip = load_clip(path)
        if clip is None:
            print(f"  (missing {path}: skipped)", file=sys.stderr)
            continue
        yield name, clip[0], clip[1], ref


def pct(edits: int, words: int) -> str:
    return f"{100 * edits / max(words, 1):.1f} %"


# --- ASR ---------------------------------------------------------------------------


def _engines() -> dict[str, Callable[[], Any]]:
    from openrealtime.voice.asr import PocketSphinxTranscriber
    from openrealtime.voice.whisper import WhisperTranscriber

    return {
        "whisper tiny.en (beam 5)": lambda: WhisperTranscriber(num_workers=1),
        "whisper tiny.en (greedy)": lambda: WhisperTranscriber(
            num_workers=1, beam_size=1
        ),
        "pocketsphinx": PocketSphinxTranscriber,
    }


def synthetic_clips(quick: bool) -> list[tuple[str, bytes, str]]:
    from openrealtime.voice.flite import VOICES as FLITE, FliteSynthesizer
    from openrealtime.voice.tts import VOICES as ESPEAK, EspeakSynthesizer

    out = []
    sentences = SENTENCES[:2] if quick else SENTENCES[:3]
    for engine, synth, voices in (
        ("flite", FliteSynthesizer(), FLITE),
        ("espeak", EspeakSynthesizer(), ESPEAK),
    ):
        for voice in voices:
            for text in sentences:
                pcm = b"".join(synth.synthesize(text, voice=voice, speed=1.0))
                out.append((f"{engine}/{voice}", pcm, text))
    return out


def bench_asr(quick: bool) -> None:
    humans = list(human_clips())
    synthetic = synthetic_clips(quick)
    print("\n### Recognizers (direct, one thread, CPU time)\n")
    print(
        "| engine | load s | WER human "
        f"({len(humans)} clips) | WER flite | WER espeak | WER all | RTF (CPU s/s) |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name, make in _engines().items():
        start = time.process_time()
        engine = make()
        load = time.process_time() - start
        cpu = seconds = 0.0
        counts: dict[str, list[int]] = {"human": [0, 0], "flite": [0, 0]}
        counts["espeak"] = [0, 0]
        per_clip: list[str] = []
        for kind, clips in (
            ("human", [(n, p, r, t) for n, p, r, t in humans]),
            (
                "synthetic",
                [(n, p, 24000, t) for n, p, t in synthetic],
            ),
        ):
            for clip_name, pcm, rate, ref in clips:
                start = time.process_time()
                text = "".join(engine.transcribe(pcm, rate, language="en", prompt=None))
                cpu += time.process_time() - start
                seconds += len(pcm) / 2 / rate
                edits, words = wer_counts(ref, text)
                key = "human" if kind == "human" else clip_name.split("/")[0]
                counts[key][0] += edits
                counts[key][1] += words
                if kind == "human" and edits:
                    per_clip.append(f"{clip_name}: {text.strip()!r}")
        total = [sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())]
        print(
            f"| {name} | {load:.2f} | {pct(*counts['human'])} | "
            f"{pct(*counts['flite'])} | {pct(*counts['espeak'])} | "
            f"{pct(*total)} | {cpu / seconds:.3f} |"
        )
        for line in per_clip:
            print(f"  <!-- {name} misheard {line} -->", file=sys.stderr)


# --- TTS ---------------------------------------------------------------------------


def bench_tts(quick: bool) -> None:
    from openrealtime.voice.flite import VOICES as FLITE, FliteSynthesizer
    from openrealtime.voice.tts import EspeakSynthesizer
    from openrealtime.voice.whisper import WhisperTranscriber

    listener = WhisperTranscriber(num_workers=1)
    sentences = SENTENCES[:3] if quick else SENTENCES
    synths: dict[str, Any] = {
        "flite": FliteSynthesizer(),
        "espeak": EspeakSynthesizer(),
    }
    from openrealtime.voice import piper

    if piper.available() and piper._packaged_model() is not None:
        # One speaker (joe): every voice name sounds the same; its own process.
        synths["piper"] = piper.PiperSynthesizer()
    print("\n### Voices read back by a Whisper listener (tiny.en, beam 5)\n")
    print(f"{len(sentences)} sentences per voice, speed 1.0.\n")
    names = list(synths)
    print(
        "| voice | flite voice | "
        + " | ".join(f"{n} WER" for n in names)
        + " | "
        + " | ".join(f"{n} RTF" for n in names)
        + " |"
    )
    print("|---|---|" + "--:|" * (2 * len(names)))
    firsts: dict[str, list[float]] = {k: [] for k in synths}
    totals: dict[str, list[int]] = {k: [0, 0] for k in synths}
    for voice, spec in FLITE.items():
        row: dict[str, tuple[str, float]] = {}
        for engine, synth in synths.items():
            edits = words = 0
            wall = seconds = 0.0
            for text in sentences:
                start = time.perf_counter()
                chunks = iter(synth.synthesize(text, voice=voice, speed=1.0))
                first = next(chunks)
                firsts[engine].append(time.perf_counter() - start)
                pcm = first + b"".join(chunks)
                wall += time.perf_counter() - start
                seconds += len(pcm) / 48000
                heard = "".join(
                    listener.transcribe(pcm, 24000, language="en", prompt=None)
                )
                e, w = wer_counts(text, heard)
                edits += e
                words += w
            totals[engine][0] += edits
            totals[engine][1] += words
            row[engine] = (pct(edits, words), wall / seconds)
        f0 = f"{spec.name} {spec.f0} Hz" if spec.f0 else spec.name
        print(
            f"| {voice} | {f0} | "
            + " | ".join(row[n][0] for n in names)
            + " | "
            + " | ".join(f"{row[n][1]:.3f}" for n in names)
            + " |"
        )
    print(
        "| **all** | | "
        + " | ".join(f"**{pct(*totals[n])}**" for n in names)
        + " |"
        + " |" * len(names)
    )
    for engine, values in firsts.items():
        print(
            f"\n{engine}: first 40 ms chunk of a sentence p50 "
            f"{statistics.median(values) * 1000:.0f} ms, p90 "
            f"{statistics.quantiles(values, n=10)[-1] * 1000:.0f} ms (process start "
            "included)",
            end="",
        )
    print()
    if "piper" in synths:
        synths["piper"].close()


# --- Live server ---------------------------------------------------------------------


async def one_turn(url: str, pcm24: bytes) -> dict[str, Any]:
    import websockets

    async with websockets.connect(url) as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {"transcription": {"model": "gpt-4o-transcribe"}}
                        },
                    },
                }
            )
        )
        await ws.recv()
        lead = audio.silence(300, 24000)
        stream = lead + pcm24
        tail = audio.silence(1500, 24000)
        marks: dict[str, Any] = {}
        texts: dict[str, str] = {}
        finished = asyncio.Event()

        async def reader() -> None:
            # A clip with pauses may make several turns: latency is measured
            # on the last one (the one that ends with the clip), the WER on
            # all their transcripts.
            last_item = None
            async for frame in ws:
                event = json.loads(frame)
                kind = event["type"]
                now = time.perf_counter()
                if kind == "input_audio_buffer.speech_stopped":
                    last_item = event["item_id"]
                    marks["stopped"] = now
                    finished.clear()
                    marks.pop("transcript", None)
                    marks.pop("audio", None)
                elif kind == "conversation.item.input_audio_transcription.completed":
                    texts[event["item_id"]] = event["transcript"]
                    if event["item_id"] == last_item:
                        marks["transcript"] = now
                elif kind == "response.output_audio.delta":
                    marks.setdefault("audio", now)
                elif kind == "response.done" and "audio" in marks:
                    if "transcript" in marks:
                        finished.set()

        task = asyncio.create_task(reader())
        start = time.perf_counter()
        for n, data in enumerate([stream, tail]):
            for i in range(0, len(data), CHUNK):
                await ws.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(data[i : i + CHUNK]).decode(),
                        }
                    )
                )
                sent_ms = (i + CHUNK) / 48 + (len(stream) / 48 if n else 0)
                delay = start + sent_ms / 1000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if n == 0:
                marks["speech_end"] = time.perf_counter()
        # The tail (1.5 s of silence) has ended every turn: wait for the last.
        await asyncio.wait_for(finished.wait(), 60)
        task.cancel()
        marks["text"] = " ".join(texts.values())
    return marks


#: Live variants: (label, pipeline arguments, early transcription on,
#: Whisper's shortest encoder window in seconds: None is the default).
LIVE_VARIANTS: dict[str, tuple[dict[str, str], bool, float | None]] = {
    "default": (
        {"vad": "auto", "transcription": "auto", "speech": "auto"},
        True,
        None,
    ),
    "default, 30 s Whisper window": (
        {"vad": "auto", "transcription": "auto", "speech": "auto"},
        True,
        30.0,
    ),
    "default, no early decode": (
        {"vad": "auto", "transcription": "auto", "speech": "auto"},
        False,
        None,
    ),
    "pocketsphinx + espeak": (
        {"vad": "silero", "transcription": "pocketsphinx", "speech": "espeak"},
        True,
        None,
    ),
}


async def bench_live(
    quick: bool, variants: list[str] | None = None, per_clip: bool = False
) -> None:
    for label in variants or list(LIVE_VARIANTS):
        await bench_live_one(quick, label, per_clip)


async def bench_live_one(quick: bool, label: str, per_clip: bool = False) -> None:
    from tests.server.conftest import running_server

    from openrealtime.server import Settings, early
    from openrealtime.server.pipeline import Pipeline
    from openrealtime.voice import whisper

    fields, early_on, window_s = LIVE_VARIANTS[label]
    pipeline = Pipeline(**fields)
    observe = early.EarlyTranscription.observe
    default_window = whisper.DEFAULT_WINDOW_S
    if window_s is not None:
        whisper.DEFAULT_WINDOW_S = window_s
    if not early_on:  # the variant without it: nothing starts before the commit
        early.EarlyTranscription.observe = lambda self, session: None  # type: ignore[method-assign]
    clips = list(human_clips())
    if quick:
        clips = clips[:4]
    lat: dict[str, list[float]] = {"stopped": [], "transcript": [], "audio": []}
    edits = words = 0
    try:
        with running_server(Settings(pipeline=pipeline), "picows") as live:
            url = live.ws_url(model="gpt-realtime")
            for name, pcm, rate, ref in clips:
                marks = await one_turn(url, audio.resample(pcm, rate, 24000))
                for key in lat:
                    lat[key].append((marks[key] - marks["speech_end"]) * 1000)
                if per_clip:
                    print(
                        f"  {name}: {len(pcm) / 2 / rate:.1f} s, "
                        + ", ".join(f"{key} {lat[key][-1]:.0f} ms" for key in lat)
                        + f": {marks.get('text', '')!r}",
                        flush=True,
                    )
                e, w = wer_counts(ref, marks.get("text", ""))
                edits += e
                words += w
    finally:
        early.EarlyTranscription.observe = observe  # type: ignore[method-assign]
        whisper.DEFAULT_WINDOW_S = default_window
    print(f"\n### Live server, {label} ({pipeline.describe()})\n")
    print(
        f"{len(clips)} human clips streamed at real time, silence_duration_ms 200, "
        f"echo responder. WER of the transcripts: **{pct(edits, words)}**.\n"
    )
    print("| from speech end to | p50 ms | p90 ms | max ms |")
    print("|---|--:|--:|--:|")
    for key, label in (
        ("stopped", "`speech_stopped`"),
        ("transcript", "transcript (`...transcription.completed`)"),
        ("audio", "first `response.output_audio.delta`"),
    ):
        values = sorted(lat[key])
        p90 = values[max(0, -(-9 * len(values) // 10) - 1)]  # nearest rank
        print(
            f"| {label} | {statistics.median(values):.0f} | {p90:.0f} | "
            f"{values[-1]:.0f} |"
        )


# --- One talking session, 50 idle ones -----------------------------------------------

IDLE_SESSIONS = 50
IDLE_INTERVAL = 0.2
IDLE_LIMIT_MS = 50.0


async def idle_session(
    url: str, index: int, ready: asyncio.Event, phase: list[str], out: dict[str, Any]
) -> None:
    """One idle session: a round trip every IDLE_INTERVAL, filed under the
    phase it started in (``out[phase][index]``)."""
    import websockets

    clear = json.dumps({"type": "input_audio_buffer.clear"})
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        await ws.recv()  # session.created
        await ready.wait()
        # Spread the sessions over the interval.
        await asyncio.sleep(IDLE_INTERVAL * index / IDLE_SESSIONS)
        while phase[0] != "done":
            current = phase[0]
            t0 = time.perf_counter()
            await ws.send(clear)
            while json.loads(await ws.recv())["type"] != "input_audio_buffer.cleared":
                pass
            out[current][index].append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(IDLE_INTERVAL)


def _idle_row(label: str, per_session: list[list[float]]) -> str:
    values = sorted(v for session in per_session for v in session)
    worst = [max(session) for session in per_session if session]
    over = sum(1 for m in worst if m >= IDLE_LIMIT_MS)
    slow = sum(1 for v in values if v >= IDLE_LIMIT_MS)
    return (
        f"| {label} | {len(values)} | {statistics.median(values):.1f} | "
        f"{values[max(0, -(-99 * len(values) // 100) - 1)]:.1f} | {values[-1]:.1f} | "
        f"{slow} | {over} of {len(worst)} |"
    )


async def bench_idle_run(url: str, quick: bool, quiet_s: float) -> dict[str, Any]:
    clips = list(human_clips())
    if quick:
        clips = clips[:4]
    ready = asyncio.Event()
    phase = ["quiet"]
    out: dict[str, Any] = {
        name: [[] for _ in range(IDLE_SESSIONS)] for name in ("quiet", "talking")
    }
    sessions = [
        asyncio.create_task(idle_session(url, i, ready, phase, out))
        for i in range(IDLE_SESSIONS)
    ]
    await asyncio.sleep(0)
    # Warm the voice path (model load, workers) before measuring.
    await one_turn(url, audio.resample(clips[0][1], clips[0][2], 24000))
    ready.set()
    await asyncio.sleep(quiet_s)
    phase[0] = "talking"
    first_audio: list[float] = []
    for _name, pcm, rate, _ref in clips:
        marks = await one_turn(url, audio.resample(pcm, rate, 24000))
        first_audio.append((marks["audio"] - marks["speech_end"]) * 1000)
    phase[0] = "done"
    await asyncio.gather(*sessions)
    out["first_audio"] = first_audio
    return out


def bench_idle(quick: bool) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchlib

    benchlib.warn_if_busy()
    cmd = [
        *benchlib.SERVE,
    ]
    server = benchlib.start_server(
        "openrealtime-default", None, Path("/tmp/openrealtime-bench"), cmd_template=cmd
    )
    load0 = _loadavg()
    try:
        out = asyncio.run(bench_idle_run(server.url, quick, 10.0))
    finally:
        server.stop()
    load1 = _loadavg()
    talk = sorted(out["first_audio"])
    print(
        f"\n### One talking session + {IDLE_SESSIONS} idle ones (`openrealtime serve`, "
        "no flags)\n"
    )
    print(
        f"Each idle session times `input_audio_buffer.clear` → `cleared` every "
        f"{IDLE_INTERVAL * 1000:.0f} ms; the talking session streams "
        f"{len(talk)} human clips at real time (echo replies with audio). "
        f"Load average {load0} before, {load1} after.\n"
    )
    print(
        "| phase | round trips | p50 ms | p99 ms | max ms | "
        f"round trips ≥ {IDLE_LIMIT_MS:.0f} ms | sessions with one |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|")
    print(_idle_row("nobody talking", out["quiet"]))
    print(_idle_row("one session talking", out["talking"]))
    print(
        f"\nThe talking session's speech end → first reply audio: p50 "
        f"{statistics.median(talk):.0f} ms, max {talk[-1]:.0f} ms."
    )


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=("asr", "tts", "live", "idle", "all"), default="all"
    )
    parser.add_argument("--quick", action="store_true", help="fewer clips")
    parser.add_argument(
        "--per-clip", action="store_true", help="live: each clip's latencies too"
    )
    parser.add_argument(
        "--live",
        action="append",
        choices=list(LIVE_VARIANTS),
        help="live variants to run (default: all)",
    )
    args = parser.parse_args(argv)
    if args.part in ("asr", "all"):
        bench_asr(args.quick)
    if args.part in ("tts", "all"):
        bench_tts(args.quick)
    if args.part in ("live", "all"):
        asyncio.run(bench_live(args.quick, args.live, args.per_clip))
    if args.part in ("idle", "all"):
        bench_idle(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
