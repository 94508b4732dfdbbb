"""Tests for openrealtime.voice.tts (espeak-ng streaming synthesis)."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from openrealtime import audio
from openrealtime.voice.tts import (
    DEFAULT_VOICE,
    OUTPUT_RATE,
    VOICES,
    EspeakSynthesizer,
    SynthesisError,
    Synthesizer,
    _WavStream,
    available,
    espeak_rate,
)


__all__: list[str] = []

requires_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng binary not installed (apt-get install espeak-ng)",
)
OPENAI_VOICES = [
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
]


def _wav_header(rate: int = 22050, channels: int = 1, bits: int = 16) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2, 2, bits)
    return (
        b"RIFF\xff\xff\xff\x7fWAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data\xff\xff\xff\x7f"
    )


def _fake_espeak(tmp_path: Path, body: str) -> str:
    """Write an executable stand-in for espeak-ng; return its path."""
    path = tmp_path / "fake-espeak"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_voice_table_covers_openai_voices_distinctly() -> None:
    assert sorted(VOICES) == sorted(OPENAI_VOICES)
    assert DEFAULT_VOICE in VOICES
    assert len(set(VOICES.values())) == len(VOICES)
    assert all(0 <= v.pitch <= 99 for v in VOICES.values())


@pytest.mark.parametrize(
    ("speed", "expected"),
    [
        (1.0, (175, 0)),
        (1.5, (262, 0)),
        (9.0, (262, 0)),
        (0.5, (88, 0)),
        (0.25, (80, 14)),
        (0.01, (80, 14)),
    ],
)
def test_speed_mapping(speed: float, expected: tuple[int, int]) -> None:
    assert espeak_rate(speed) == expected


def test_speed_mapping_is_monotonic() -> None:
    speeds = np.linspace(0.25, 1.5, 51)
    rates = [espeak_rate(float(s)) for s in speeds]
    wpm = [r[0] for r in rates]
    gaps = [r[1] for r in rates]
    assert wpm == sorted(wpm)
    assert gaps == sorted(gaps, reverse=True)


def test_command_line() -> None:
    tts = EspeakSynthesizer()
    argv = tts.command(voice="shimmer", speed=1.0)
    assert argv[0] == "espeak-ng"
    assert argv[argv.index("-v") + 1] == VOICES["shimmer"].name
    assert argv[argv.index("-p") + 1] == str(VOICES["shimmer"].pitch)
    assert argv[argv.index("-s") + 1] == "175"
    # Unknown voices fall back to the default one.
    unknown = tts.command(voice="nova", speed=1.0)
    assert unknown == tts.command(voice=DEFAULT_VOICE, speed=1.0)


def test_bad_chunk_size_rejected() -> None:
    with pytest.raises(ValueError, match="chunk_ms"):
        EspeakSynthesizer(chunk_ms=0)


def test_available() -> None:
    assert available("definitely-not-a-real-binary-xyz") is False
    assert EspeakSynthesizer("definitely-not-a-real-binary-xyz").available() is False
    assert available() is (shutil.which("espeak-ng") is not None)


def test_missing_binary_raises_when_iterated() -> None:
    tts = EspeakSynthesizer("/nonexistent/espeak-ng")
    chunks = tts.synthesize("hello", voice="alloy", speed=1.0)  # nothing runs yet
    with pytest.raises(SynthesisError, match="cannot run"):
        next(chunks)


def test_blank_text_yields_nothing() -> None:
    tts = EspeakSynthesizer("/nonexistent/espeak-ng")
    assert list(tts.synthesize("  \n", voice="alloy", speed=1.0)) == []


# --- real espeak-ng ----------------------------------------------------------
@requires_espeak
def test_is_a_synthesizer_streaming_small_chunks() -> None:
    tts = EspeakSynthesizer(chunk_ms=40)
    assert isinstance(tts, Synthesizer)
    assert tts.available()
    assert tts.rate == OUTPUT_RATE == 24000
    chunks = list(
        tts.synthesize("This sentence is long enough.", voice="echo", speed=1.0)
    )
    assert len(chunks) > 10
    assert all(len(c) == 1920 for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 1920
    assert len(chunks[-1]) % 2 == 0
    pcm = b"".join(chunks)
    assert 800 < audio.duration_ms(len(pcm), "audio/pcm") < 4000
    assert audio.rms(pcm) > 0.05


@requires_espeak
def test_speed_changes_duration() -> None:
    tts = EspeakSynthesizer()
    text = "one two three four five six seven eight"

    def seconds(speed: float) -> float:
        pcm = b"".join(tts.synthesize(text, voice="alloy", speed=speed))
        return len(pcm) / 2 / OUTPUT_RATE

    normal, fast, slow = seconds(1.0), seconds(1.5), seconds(0.25)
    assert fast < normal * 0.8
    assert slow > normal * 2.5


def _median_f0(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    hop = OUTPUT_RATE // 25
    f0s = []
    for i in range(0, x.size - hop, hop):
        f = x[i : i + hop] - x[i : i + hop].mean()
        if np.sqrt(np.mean(f * f)) < 1000:
            continue
        ac = np.correlate(f, f, "full")[hop - 1 :]
        lo, hi = OUTPUT_RATE // 400, OUTPUT_RATE // 60
        f0s.append(OUTPUT_RATE / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0s))


@requires_espeak
def test_voices_sound_different() -> None:
    tts = EspeakSynthesizer()
    text = "Hello there, this is a test of the voice."
    clips = {v: b"".join(tts.synthesize(text, voice=v, speed=1.0)) for v in VOICES}
    assert len(set(clips.values())) == len(VOICES)
    f0 = {v: _median_f0(pcm) for v, pcm in clips.items()}
    # Female-mapped voices are clearly higher pitched than male-mapped ones.
    for high in ("alloy", "coral", "shimmer", "marin", "sage"):
        for low in ("ash", "echo", "cedar", "verse", "ballad"):
            assert f0[high] > f0[low] * 1.2, (high, low, f0)


@requires_espeak
def test_cancel_kills_espeak() -> None:
    # A long text keeps espeak-ng busy; closing after one chunk must not
    # leave the process running.
    tts = EspeakSynthesizer()
    chunks = tts.synthesize("This goes on and on. " * 500, voice="echo", speed=1.0)
    assert next(chunks)
    frame = chunks.gi_frame  # type: ignore[attr-defined]
    proc = frame.f_locals["proc"]
    chunks.close()
    assert proc.returncode is not None


def test_cancel_kills_a_hung_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = tmp_path / "hang.py"
    script.write_text(
        "import os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "sys.stdin.buffer.read()\n"
        f"sys.stdout.buffer.write({_wav_header() + bytes(22050)!r})\n"
        "sys.stdout.flush()\n"
        "time.sleep(60)\n"
    )
    exe = _fake_espeak(tmp_path, f'exec "{sys.executable}" "{script}"')
    chunks = EspeakSynthesizer(exe).synthesize("hi", voice="alloy", speed=1.0)
    assert len(next(chunks)) == 1920
    chunks.close()
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_failure_exit_status_raises(tmp_path: Path) -> None:
    exe = _fake_espeak(tmp_path, "echo 'voice not found' >&2\nexit 1")
    chunks = EspeakSynthesizer(exe).synthesize("hi", voice="alloy", speed=1.0)
    with pytest.raises(SynthesisError, match="status 1: voice not found"):
        list(chunks)


def test_early_exit_with_long_text_raises(tmp_path: Path) -> None:
    # espeak-ng dying without reading its input breaks the pipe; the exit
    # status is what gets reported.
    exe = _fake_espeak(tmp_path, "exit 3")
    chunks = EspeakSynthesizer(exe).synthesize("x" * 500_000, voice="ash", speed=1)
    with pytest.raises(SynthesisError, match="status 3"):
        list(chunks)


def test_header_only_output_yields_nothing(tmp_path: Path) -> None:
    script = tmp_path / "header.py"
    script.write_text(
        f"import sys\nsys.stdin.buffer.read()\nsys.stdout.buffer.write({_wav_header()!r})\n"
    )
    exe = _fake_espeak(tmp_path, f'exec "{sys.executable}" "{script}"')
    assert list(EspeakSynthesizer(exe).synthesize("hi", voice="ash", speed=1)) == []


def test_non_wav_output_raises(tmp_path: Path) -> None:
    exe = _fake_espeak(tmp_path, "cat > /dev/null\necho 'this is not a wav file'")
    with pytest.raises(SynthesisError, match="did not write WAV"):
        list(EspeakSynthesizer(exe).synthesize("hi", voice="alloy", speed=1.0))


# --- WAV stream parser -------------------------------------------------------
def _feed_all(data: bytes, step: int) -> tuple[bytes, int | None]:
    wav = _WavStream()
    out = b"".join(wav.feed(data[i : i + step]) for i in range(0, len(data), step))
    return out, wav.rate


@pytest.mark.parametrize("step", [1, 3, 7, 44, 4096])
def test_wav_parser_any_split(step: int) -> None:
    payload = bytes(range(256)) * 4
    out, rate = _feed_all(_wav_header(16000) + payload, step)
    assert out == payload
    assert rate == 16000


@pytest.mark.parametrize("step", [1, 5, 4096])
def test_wav_parser_skips_other_chunks(step: int) -> None:
    header = _wav_header()
    # Put a LIST chunk with an odd size (padded) before the data chunk.
    data_at = header.index(b"data")
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    out, rate = _feed_all(header[:data_at] + extra + header[data_at:] + b"xy", step)
    assert out == b"xy"
    assert rate == 22050


def test_wav_parser_rejects_stereo_and_missing_fmt() -> None:
    with pytest.raises(SynthesisError, match="PCM16 mono"):
        _WavStream().feed(_wav_header(channels=2))
    with pytest.raises(SynthesisError, match="before its fmt"):
        _WavStream().feed(b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00")
