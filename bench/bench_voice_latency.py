"""Time from the end of speech to the first byte of the spoken reply.

A live server runs the full offline pipeline (Silero VAD, PocketSphinx,
espeak-ng, echo responder). A spoken sentence is streamed in 20 ms chunks at
real-time pace, as a microphone would. Measured per turn, from the client's
side:

* ``stopped -> first audio``: from receiving ``input_audio_buffer.speech_stopped``
  to receiving the first ``response.output_audio.delta`` (transcription of the
  turn, the responder, and speech synthesis of the first sentence);
* ``speech end -> first audio``: from sending the last chunk of speech (before
  the trailing silence) to that first delta: what a user waits, including the
  ``silence_duration_ms`` the VAD needs to be sure the turn ended.

Run: ``python bench/bench_voice_latency.py [--quick] [--turns N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from pathlib import Path

import websockets


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server.conftest import running_server  # noqa: E402

from openrealtime import audio  # noqa: E402
from openrealtime.voice.tts import EspeakSynthesizer  # noqa: E402


CHUNK = 960  # 20 ms of 24 kHz PCM16
SENTENCES = [
    "Hello, what is the weather like today?",
    "Please tell me a short story about a cat.",
    "How far away is the moon from the earth?",
]


async def one_turn(url: str, speech: bytes, silence_ms: int) -> tuple[float, float]:
    """Stream one spoken turn in real time; return both latencies in ms."""
    async with websockets.connect(url) as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {
                                "transcription": {"model": "whisper-1"},
                                "turn_detection": {
                                    "type": "server_vad",
                                    "silence_duration_ms": silence_ms,
                                },
                            }
                        },
                    },
                }
            )
        )
        await ws.recv()
        stream = audio.silence(300, 24000) + speech
        tail = audio.silence(silence_ms + 1000, 24000)
        marks: dict[str, float] = {}

        async def reader() -> None:
            async for frame in ws:
                kind = json.loads(frame)["type"]
                if kind == "input_audio_buffer.speech_stopped":
                    marks["stopped"] = time.perf_counter()
                elif kind == "response.output_audio.delta" and "audio" not in marks:
                    marks["audio"] = time.perf_counter()
                elif kind == "response.done":
                    return

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
        await asyncio.wait_for(task, 60)
    return (
        (marks["audio"] - marks["stopped"]) * 1000,
        (marks["audio"] - marks["speech_end"]) * 1000,
    )


async def run(turns: int, silence_ms: int) -> None:
    from openrealtime.server import Settings
    from openrealtime.server.pipeline import Pipeline

    synth = EspeakSynthesizer()
    speeches = [
        b"".join(synth.synthesize(s, voice="echo", speed=1.0)) for s in SENTENCES
    ]
    pipeline = Pipeline(vad="silero", transcription="pocketsphinx", speech="espeak")
    with running_server(Settings(pipeline=pipeline)) as live:
        url = live.ws_url(model="gpt-realtime")
        a, b = [], []
        for i in range(turns):
            x, y = await one_turn(url, speeches[i % len(speeches)], silence_ms)
            a.append(x)
            b.append(y)
    print(
        f"{turns} spoken turns, silence_duration_ms={silence_ms}, real-time streaming"
    )
    print(f"{'measure':<28}{'median ms':>10}{'min':>8}{'max':>8}")
    for name, values in (
        ("stopped -> first audio", a),
        ("speech end -> first audio", b),
    ):
        print(
            f"{name:<28}{statistics.median(values):>10.0f}{min(values):>8.0f}{max(values):>8.0f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one turn")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--silence-ms", type=int, default=500)
    args = parser.parse_args(argv)
    asyncio.run(run(1 if args.quick else args.turns, args.silence_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
