"""Tests for openrealtime.voice.asr, with an espeak -> VAD -> ASR round trip."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from openrealtime import audio
from openrealtime.audio import AudioFormatType
from openrealtime.voice.asr import (
    PocketSphinxTranscriber,
    Transcriber,
    UnsupportedLanguage,
)
from openrealtime.voice.vad import best_available_scorer


__all__: list[str] = []

pytest.importorskip("pocketsphinx")


@pytest.fixture(scope="module")
def asr() -> PocketSphinxTranscriber:
    return PocketSphinxTranscriber()


def test_is_a_transcriber(asr: PocketSphinxTranscriber) -> None:
    assert isinstance(asr, Transcriber)
    assert asr.rate == 16000


@pytest.mark.parametrize("language", [None, "en", "EN", "en-US", "en_GB"])
def test_english_accepted(asr: PocketSphinxTranscriber, language: str | None) -> None:
    asr.check_language(language)


@pytest.mark.parametrize("language", ["fr", "de-DE", "eng", ""])
def test_other_languages_rejected_at_call_time(
    asr: PocketSphinxTranscriber, language: str
) -> None:
    with pytest.raises(UnsupportedLanguage, match="is not supported") as info:
        asr.transcribe(b"", 16000, language=language, prompt=None)
    assert info.value.language == language
    assert isinstance(info.value, ValueError)


def test_empty_and_silent_audio_give_no_text(asr: PocketSphinxTranscriber) -> None:
    assert list(asr.transcribe(b"", 24000, language=None, prompt=None)) == []
    silent = audio.silence(1000, 16000)
    assert "".join(asr.transcribe(silent, 16000, language="en", prompt=None)) == ""


def test_deltas_concatenate_to_words(
    asr: PocketSphinxTranscriber, speak: Callable[..., bytes]
) -> None:
    deltas = list(
        asr.transcribe(speak("hello world"), 24000, language="en", prompt="greeting")
    )
    text = "".join(deltas)
    assert text == "hello world"
    assert deltas[0] == "hello"
    assert all(d.startswith(" ") for d in deltas[1:])


def test_decoder_is_reusable(
    asr: PocketSphinxTranscriber, speak: Callable[..., bytes]
) -> None:
    clip = speak("hello world")
    first = "".join(asr.transcribe(clip, 24000, language=None, prompt=None))
    second = "".join(asr.transcribe(clip, 24000, language=None, prompt=None))
    assert first == second


def test_end_to_end_speech_vad_transcript(
    asr: PocketSphinxTranscriber, speak: Callable[..., bytes]
) -> None:
    # espeak speaks with silence around it, the VAD finds the speech and
    # PocketSphinx transcribes that span (plus padding, as the engine will).
    clip = speak("hello world", pad_ms=700)
    scorer = best_available_scorer()
    pcm_vad = audio.resample(clip, 24000, scorer.rate)
    n = 2 * scorer.frame_samples
    scores = np.array(
        [scorer.score(pcm_vad[i : i + n]) for i in range(0, len(pcm_vad) - n + 1, n)]
    )
    speech = np.flatnonzero(scores >= 0.5)
    frame_ms = 1000 * scorer.frame_samples / scorer.rate
    start_ms, end_ms = speech[0] * frame_ms, (speech[-1] + 1) * frame_ms
    total_ms = audio.duration_ms(len(clip), "audio/pcm")
    # The speech sits between the 700 ms pads (allowing for VAD lag).
    assert 500 <= start_ms <= 900
    assert total_ms - 900 <= end_ms <= total_ms - 400

    lo = audio.bytes_for_ms(start_ms - 300, "audio/pcm")
    hi = audio.bytes_for_ms(end_ms + 300, "audio/pcm")
    text = "".join(asr.transcribe(clip[lo:hi], 24000, language="en", prompt=None))
    assert text.split() == ["hello", "world"]


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_transcribes_telephone_audio(
    asr: PocketSphinxTranscriber, speak: Callable[..., bytes], fmt: AudioFormatType
) -> None:
    # 8 kHz G.711 loses everything above 4 kHz, which the 16 kHz model
    # misses, so only the more robust key word is required.
    wire = audio.from_pcm16(speak("hello world", pad_ms=300), 24000, fmt)
    pcm, rate = audio.to_pcm16(wire, fmt)
    assert rate == 8000
    text = "".join(asr.transcribe(pcm, rate, language=None, prompt=None))
    assert "world" in text.split()
