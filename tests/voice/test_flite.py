"""flite: ten distinct voices, speed, streaming, and a Whisper listener."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from openrealtime import audio
from openrealtime.voice.flite import VOICES, FliteSynthesizer, flite_stretch
from openrealtime.voice.tts import SynthesisError
from openrealtime.voice.whisper import WhisperTranscriber


TEXT = "Please book a table for two at seven tonight."


def say(text: str = TEXT, voice: str = "alloy", speed: float = 1.0) -> bytes:
    return b"".join(FliteSynthesizer().synthesize(text, voice=voice, speed=speed))


def median_f0(pcm: bytes, rate: int = 24000) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    hop, n, found = rate // 100, rate // 25, []
    for i in range(0, x.size - n, hop):
        frame = x[i : i + n] - x[i : i + n].mean()
        if np.sqrt(np.mean(frame**2)) < 500:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        lo, hi = rate // 400, rate // 60
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.4 * ac[0]:
            found.append(rate / k)
    return float(np.median(found))


def test_the_ten_voices_are_distinct() -> None:
    """Each Realtime voice name is its own flite voice or pitch."""
    assert len(VOICES) == 10
    assert len({(v.name, v.f0) for v in VOICES.values()}) == 10
    f0 = {name: median_f0(say("Hello there, how are you?", name)) for name in VOICES}
    # The pitch asked for is the pitch heard (rms keeps its own, about 100 Hz).
    for name, spec in VOICES.items():
        target = spec.f0 or 101
        assert abs(f0[name] - target) < 0.2 * target, (name, f0[name])


def test_speed_stretches_time() -> None:
    normal = len(say(speed=1.0))
    assert 1.7 < len(say(speed=0.5)) / normal < 2.3
    assert 0.55 < len(say(speed=1.5)) / normal < 0.8
    assert flite_stretch(0.1) == 4.0 and flite_stretch(9) == pytest.approx(1 / 1.5)


def test_unknown_voice_blank_text_and_chunks() -> None:
    assert say(voice="fable") == say(voice="alloy")
    assert say("   ") == b""
    chunks = list(FliteSynthesizer(chunk_ms=20).synthesize(TEXT, voice="ash", speed=1))
    assert all(len(c) == 960 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 960
    assert audio.rms(b"".join(chunks)) > 0.02
    with pytest.raises(ValueError):
        FliteSynthesizer(chunk_ms=0)


def test_closing_early_kills_flite() -> None:
    stream = FliteSynthesizer().synthesize(TEXT * 20, voice="alloy", speed=1.0)
    next(stream)
    stream.close()  # no exception, no process left (the with block reaps it)


def test_failures_are_synthesis_errors(tmp_path: Path) -> None:
    with pytest.raises(SynthesisError, match="cannot run"):
        list(
            FliteSynthesizer(str(tmp_path / "no-flite")).synthesize(
                "hi", voice="ash", speed=1
            )
        )
    failing = tmp_path / "flite"
    failing.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(SynthesisError, match="status 3: broken"):
        list(FliteSynthesizer(str(failing)).synthesize("hi", voice="ash", speed=1))
    assert (
        FliteSynthesizer().available()
        and not FliteSynthesizer(str(tmp_path / "x")).available()
    )
    assert shutil.which("flite")


def test_a_whisper_listener_understands_the_extreme_voices() -> None:
    """The deepest and the highest voice, read back word for word."""
    listener = WhisperTranscriber()
    sentence = "Can you remind me to call my sister tomorrow morning?"
    expected = set(sentence.lower().rstrip("?").split())
    for voice in ("echo", "shimmer"):
        started = time.monotonic()
        pcm = say(sentence, voice=voice)
        heard = "".join(listener.transcribe(pcm, 24000, language="en", prompt=None))
        got = "".join(
            c if c.isalnum() or c == " " else " " for c in heard.lower()
        ).split()
        assert len(expected - set(got)) <= 1, (voice, heard)
        assert time.monotonic() - started < 60
