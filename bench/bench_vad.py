"""Compare the voice activity scorers on synthetic speech and noise.

Speech comes from espeak-ng (several voices), laid out between gaps with
known boundaries and mixed with background noise at several levels; the
noise-only clips are white and pink noise, tones, a music-like chord
sequence and silence. For each scorer it reports, at the Realtime API's
default threshold of 0.5:

* frame accuracy against the known speech boundaries (and recall: speech
  frames caught; FPR on the gaps),
* false-positive rate on each noise-only clip,
* cost: CPU seconds spent scoring per second of audio (real-time factor).

Run: ``.venv/bin/python bench/bench_vad.py`` (needs espeak-ng; about a
minute on 2 cores). ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from openrealtime import audio
from openrealtime.voice.tts import EspeakSynthesizer
from openrealtime.voice.vad import EnergyScorer, FrameScorer, SileroScorer, WebRtcScorer


__all__ = ["main"]

RATE = 24000
THRESHOLD = 0.5
SENTENCES = [
    "Please open the door and turn on the light.",
    "The quick brown fox jumps over the lazy dog.",
    "I would like to book a table for two at seven tonight.",
    "What is the weather going to be like tomorrow morning?",
    "Remind me to call my sister when I get home.",
    "Seventy three apples were sold at the market on Sunday.",
]
VOICES = ["echo", "shimmer", "ballad", "coral", "cedar", "marin"]
Array = npt.NDArray[np.float64]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _to_pcm(x: Array) -> bytes:
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def _at_dbfs(x: Array, dbfs: float) -> Array:
    level = float(np.sqrt(np.mean(x * x))) or 1.0
    return x / level * 32768 * 10 ** (dbfs / 20)


def white(seconds: float, dbfs: float, seed: int = 0) -> Array:
    """White Gaussian noise at an RMS level."""
    return _at_dbfs(_rng(seed).standard_normal(int(seconds * RATE)), dbfs)


def pink(seconds: float, dbfs: float, seed: int = 0) -> Array:
    """1/f noise made by shaping white noise in the frequency domain."""
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1]
    return _at_dbfs(np.fft.irfft(spectrum / np.sqrt(f), n), dbfs)


def music(seconds: float, dbfs: float, seed: int = 0) -> Array:
    """Chords of harmonic tones changing every 250 ms, with soft attacks."""
    rng = _rng(seed)
    note = int(0.25 * RATE)
    t = np.arange(note) / RATE
    env = np.minimum(1.0, t / 0.02) * np.exp(-t * 3)
    parts = []
    for _ in range(int(seconds / 0.25)):
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        chord = np.zeros(note)
        for ratio in (1.0, 1.26, 1.5):
            for k in range(1, 6):
                chord += np.sin(2 * np.pi * root * ratio * k * t) / k
        parts.append(chord * env)
    return _at_dbfs(np.concatenate(parts), dbfs)


def tone_clip(seconds: float, dbfs: float) -> Array:
    """A steady 440 Hz sine."""
    t = np.arange(int(seconds * RATE)) / RATE
    return _at_dbfs(np.sin(2 * np.pi * 440 * t), dbfs)


@dataclass
class SpeechClip:
    """Speech laid between gaps, with the true speech mask per sample."""

    name: str
    pcm: bytes
    mask: npt.NDArray[np.bool_]


def _trim(x: Array) -> Array:
    loud = np.flatnonzero(np.abs(x) > 100)
    return x[loud[0] : loud[-1] + 1]


def speech_clips() -> list[SpeechClip]:
    """Build the speech test set under several background conditions."""
    tts = EspeakSynthesizer()
    rng = _rng(7)
    utterances = []
    for i, text in enumerate(SENTENCES):
        pcm = b"".join(tts.synthesize(text, voice=VOICES[i], speed=1.0))
        x = _trim(np.frombuffer(pcm, dtype="<i2").astype(np.float64))
        utterances.append(_at_dbfs(x, -22))
    parts: list[Array] = []
    mask_parts: list[npt.NDArray[np.bool_]] = []
    for x in utterances:
        gap = np.zeros(int(rng.uniform(0.6, 1.5) * RATE))
        parts += [gap, x]
        mask_parts += [np.zeros(gap.size, bool), np.ones(x.size, bool)]
    parts.append(np.zeros(RATE))
    mask_parts.append(np.zeros(RATE, bool))
    clean = np.concatenate(parts)
    mask = np.concatenate(mask_parts)
    seconds = clean.size / RATE
    backgrounds: list[tuple[str, Array]] = [
        ("clean", np.zeros(clean.size)),
        ("white -60", white(seconds, -60, 1)),
        ("white -42 (SNR 20)", white(seconds, -42, 2)),
        ("pink -37 (SNR 15)", pink(seconds, -37, 3)),
        ("white -32 (SNR 10)", white(seconds, -32, 4)),
        ("music -32 (SNR 10)", music(seconds + 0.25, -32, 5)[: clean.size]),
    ]
    return [
        SpeechClip(name, _to_pcm(clean + noise[: clean.size]), mask)
        for name, noise in backgrounds
    ]


def noise_clips() -> list[tuple[str, bytes]]:
    """Build the noise-only test set (every frame should score below 0.5)."""
    s = 10.0
    return [
        ("digital silence", audio.silence(s * 1000, RATE)),
        ("white -70", _to_pcm(white(s, -70, 11))),
        ("white -50", _to_pcm(white(s, -50, 12))),
        ("white -30", _to_pcm(white(s, -30, 13))),
        ("pink -50", _to_pcm(pink(s, -50, 14))),
        ("pink -30", _to_pcm(pink(s, -30, 15))),
        ("tone 440 -20", _to_pcm(tone_clip(s, -20))),
        ("music -30", _to_pcm(music(s, -30, 16))),
        ("music -20", _to_pcm(music(s, -20, 17))),
    ]


@dataclass
class Result:
    """Figures for one scorer."""

    name: str
    speech: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    audio_s: float = 0.0
    frames: int = 0

    @property
    def rtf(self) -> float:
        """CPU seconds per second of audio."""
        return self.cpu_s / self.audio_s


def _score(scorer: FrameScorer, pcm24k: bytes, result: Result) -> Array:
    scorer.reset()
    pcm = audio.resample(pcm24k, RATE, scorer.rate)
    n = 2 * scorer.frame_samples
    frames = [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)]
    start = time.process_time()
    scores = np.array([scorer.score(f) for f in frames])
    result.cpu_s += time.process_time() - start
    result.audio_s += len(frames) * scorer.frame_samples / scorer.rate
    result.frames += len(frames)
    return scores


def evaluate(name: str, make: Callable[[], FrameScorer]) -> Result:
    """Run one scorer over both test sets."""
    scorer = make()
    result = Result(name)
    for clip in speech_set:
        scores = _score(scorer, clip.pcm, result)
        # A frame is speech when most of its samples are.
        step = RATE * scorer.frame_samples / scorer.rate
        truth = np.array(
            [
                clip.mask[int(i * step) : int((i + 1) * step)].mean() > 0.5
                for i in range(scores.size)
            ]
        )
        said = scores >= THRESHOLD
        accuracy = float(np.mean(said == truth))
        recall = float(np.mean(said[truth]))
        fpr = float(np.mean(said[~truth]))
        result.speech[clip.name] = (accuracy, recall, fpr)
    for noise_name, pcm in noise_set:
        result.noise[noise_name] = float(np.mean(_score(scorer, pcm, result) >= 0.5))
    return result


SCORERS: list[tuple[str, Callable[[], FrameScorer]]] = [
    ("energy", EnergyScorer),
    ("silero", SileroScorer),
    ("webrtc vote", WebRtcScorer),
    ("webrtc mode 1", lambda: WebRtcScorer(aggressiveness=1)),
    ("webrtc mode 3", lambda: WebRtcScorer(aggressiveness=3)),
]
speech_set: list[SpeechClip] = []
noise_set: list[tuple[str, bytes]] = []


def _table(results: list[Result]) -> str:
    names = [r.name for r in results]
    width = max(len(c.name) for c in speech_set) + 2
    lines = ["frame accuracy / recall / FPR on gaps (speech clips, threshold 0.5)"]
    lines.append("".ljust(width) + "".join(n.rjust(20) for n in names))
    for clip in speech_set:
        cells = [
            "{:.1%}/{:.0%}/{:.0%}".format(*r.speech[clip.name]).rjust(20)
            for r in results
        ]
        lines.append(clip.name.ljust(width) + "".join(cells))
    mean_acc = [np.mean([v[0] for v in r.speech.values()]) for r in results]
    lines.append("mean accuracy".ljust(width) + "".join(f"{a:20.1%}" for a in mean_acc))
    lines += ["", "false-positive rate on noise-only clips"]
    for noise_name, _ in noise_set:
        lines.append(
            noise_name.ljust(width)
            + "".join(f"{r.noise[noise_name]:20.1%}" for r in results)
        )
    mean_fp = [np.mean(list(r.noise.values())) for r in results]
    lines.append("mean FPR".ljust(width) + "".join(f"{f:20.1%}" for f in mean_fp))
    lines += ["", "cost"]
    lines.append(
        "RTF (CPU s/audio s)".ljust(width) + "".join(f"{r.rtf:20.4f}" for r in results)
    )
    lines.append(
        "us per frame".ljust(width)
        + "".join(f"{r.cpu_s / r.frames * 1e6:20.0f}" for r in results)
    )
    return "\n".join(lines)


def main() -> None:
    """Build the clips, evaluate every scorer and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    speech_set.extend(speech_clips())
    noise_set.extend(noise_clips())
    audio_s = sum(len(c.pcm) for c in speech_set) / 2 / RATE
    print(f"speech: {len(speech_set)} clips, {audio_s:.0f} s; noise: {len(noise_set)}")
    results = []
    for name, make in SCORERS:
        results.append(evaluate(name, make))
    print(_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.__dict__ | {"rtf": r.rtf} for r in results], f, indent=1)


if __name__ == "__main__":
    main()
