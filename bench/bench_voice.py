"""Measure the cost of the offline ASR and TTS engines.

* TTS (espeak-ng): time to the first 24 kHz chunk, and real-time factor
  (wall seconds to produce one second of audio, the process included).
* ASR (PocketSphinx): model load time, real-time factor (CPU seconds per
  second of audio) and word accuracy on espeak-ng speech per voice.

Run: ``.venv/bin/python bench/bench_voice.py`` (needs espeak-ng).
"""

from __future__ import annotations

import statistics
import time

from openrealtime import audio
from openrealtime.voice.asr import PocketSphinxTranscriber
from openrealtime.voice.tts import VOICES, EspeakSynthesizer


__all__ = ["main"]

SENTENCES = [
    "hello world",
    "good morning everyone",
    "please open the door",
    "the quick brown fox jumps over the lazy dog",
    "i would like to book a table for two",
    "what is the weather like tomorrow",
]
LONG_TEXT = " ".join(
    [
        "Here is a longer answer that an assistant might give.",
        "It has several sentences, some numbers like 42 and 1999,",
        "and it goes on for a while so that the cost can be measured.",
    ]
    * 4
)


def bench_tts() -> None:
    """Print time to first chunk and real-time factor of espeak-ng."""
    tts = EspeakSynthesizer(chunk_ms=40)
    firsts, rtfs = [], []
    for _ in range(10):
        start = time.perf_counter()
        chunks = tts.synthesize(LONG_TEXT, voice="alloy", speed=1.0)
        first = next(chunks)
        firsts.append(time.perf_counter() - start)
        rest = b"".join(chunks)
        wall = time.perf_counter() - start
        rtfs.append(wall / (audio.duration_ms(len(first + rest), "audio/pcm") / 1000))
    short = []
    for _ in range(10):
        start = time.perf_counter()
        next(iter(tts.synthesize("Hi.", voice="cedar", speed=1.0)))
        short.append(time.perf_counter() - start)
    print("TTS espeak-ng (wall clock, subprocess included)")
    print(f"  first chunk, long text   median {statistics.median(firsts) * 1e3:.1f} ms")
    print(f"  first chunk, 'Hi.'       median {statistics.median(short) * 1e3:.1f} ms")
    print(f"  real-time factor         median {statistics.median(rtfs):.4f}")


def bench_asr() -> None:
    """Print load time, real-time factor and accuracy of PocketSphinx."""
    start = time.process_time()
    asr = PocketSphinxTranscriber()
    load = time.process_time() - start
    tts = EspeakSynthesizer()
    cpu = audio_s = 0.0
    right = total = 0
    print("ASR PocketSphinx (en-us model from the wheel)")
    print(f"  model load               {load:.2f} CPU s")
    for voice in VOICES:
        exact = 0
        for text in SENTENCES:
            pcm = b"".join(tts.synthesize(text, voice=voice, speed=1.0))
            start = time.process_time()
            got = "".join(asr.transcribe(pcm, 24000, language="en", prompt=None))
            cpu += time.process_time() - start
            audio_s += len(pcm) / 2 / 24000
            want = text.split()
            right += sum(w in got.split() for w in want)
            total += len(want)
            exact += got == text
        print(f"  {voice:8s} exact transcripts {exact}/{len(SENTENCES)}")
    print(f"  words found              {right}/{total} ({right / total:.0%})")
    print(f"  real-time factor         {cpu / audio_s:.3f} CPU s per audio s")


def main() -> None:
    """Run both benchmarks."""
    bench_tts()
    bench_asr()


if __name__ == "__main__":
    main()
