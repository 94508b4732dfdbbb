"""Offline voice engines: voice activity scoring, transcription, synthesis.

Everything here is synchronous and runs on the CPU with models shipped in
wheels or Debian packages; nothing is downloaded at run time. Optional
engines are imported lazily, so importing this package never fails because
one of them is missing.

* :mod:`openrealtime.voice.vad`: :class:`FrameScorer` and its Silero,
  WebRTC and energy implementations.
* :mod:`openrealtime.voice.asr`: :class:`Transcriber` and PocketSphinx.
* :mod:`openrealtime.voice.tts`: :class:`Synthesizer` and espeak-ng.
"""

from __future__ import annotations

from openrealtime.voice.asr import (
    PocketSphinxTranscriber,
    Transcriber,
    UnsupportedLanguage,
)
from openrealtime.voice.tts import EspeakSynthesizer, SynthesisError, Synthesizer
from openrealtime.voice.vad import (
    EnergyScorer,
    FrameScorer,
    SileroScorer,
    WebRtcScorer,
    best_available_scorer,
)


__all__ = [
    "EnergyScorer",
    "EspeakSynthesizer",
    "FrameScorer",
    "PocketSphinxTranscriber",
    "SileroScorer",
    "SynthesisError",
    "Synthesizer",
    "Transcriber",
    "UnsupportedLanguage",
    "WebRtcScorer",
    "best_available_scorer",
]
