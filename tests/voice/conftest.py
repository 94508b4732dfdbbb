"""Shared fixtures for the voice tests: espeak-ng speech clips."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from functools import cache

import pytest

from openrealtime import audio
from openrealtime.voice.tts import EspeakSynthesizer


__all__: list[str] = []


@cache
def _speak(text: str, voice: str) -> bytes:
    return b"".join(EspeakSynthesizer().synthesize(text, voice=voice, speed=1.0))


@pytest.fixture
def speak() -> Callable[..., bytes]:
    """Return ``speak(text, voice="echo", pad_ms=0)``: PCM16 24 kHz speech."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng binary not installed (apt-get install espeak-ng)")

    def run(text: str, voice: str = "echo", pad_ms: int = 0) -> bytes:
        pad = audio.silence(pad_ms, 24000)
        return pad + _speak(text, voice) + pad

    return run
