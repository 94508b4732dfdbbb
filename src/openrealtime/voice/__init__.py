"""Offline voice engines: voice activity scoring, transcription, synthesis.

Everything here is synchronous and runs on the CPU with models shipped in
wheels or Debian packages; nothing is downloaded at run time. Optional
engines are imported lazily, so importing this package never fails because
one of them is missing.

* :mod:`openrealtime.voice.vad`: :class:`FrameScorer` and its Silero,
  WebRTC and energy implementations.
* :mod:`openrealtime.voice.asr`: :class:`Transcriber` and PocketSphinx.
* :mod:`openrealtime.voice.whisper`: faster-whisper (the ``whisper`` extra).
* :mod:`openrealtime.voice.tts`: :class:`Synthesizer` and espeak-ng.
* :mod:`openrealtime.voice.flite`: CMU Flite voices.
* :mod:`openrealtime.voice.piper`: Piper (the ``piper`` extra), run as a
  program of its own and spoken to over HTTP (piper is GPL-3.0).
* :mod:`openrealtime.voice.remote`: OpenAI-compatible audio servers.
* :mod:`openrealtime.voice.engines`: which engine serves a session's model.
"""

from __future__ import annotations

from openrealtime.voice.asr import (
    PocketSphinxTranscriber,
    Transcriber,
    UnsupportedLanguage,
)
from openrealtime.voice.engines import TranscriberRouter
from openrealtime.voice.flite import FliteSynthesizer
from openrealtime.voice.piper import PiperSynthesizer
from openrealtime.voice.remote import RemoteSynthesizer, RemoteTranscriber
from openrealtime.voice.tts import EspeakSynthesizer, SynthesisError, Synthesizer
from openrealtime.voice.vad import (
    EnergyScorer,
    FrameScorer,
    SileroScorer,
    WebRtcScorer,
    best_available_scorer,
)
from openrealtime.voice.whisper import WhisperTranscriber


__all__ = [
    "EnergyScorer",
    "EspeakSynthesizer",
    "FliteSynthesizer",
    "FrameScorer",
    "PiperSynthesizer",
    "PocketSphinxTranscriber",
    "RemoteSynthesizer",
    "RemoteTranscriber",
    "SileroScorer",
    "SynthesisError",
    "Synthesizer",
    "Transcriber",
    "TranscriberRouter",
    "UnsupportedLanguage",
    "WebRtcScorer",
    "WhisperTranscriber",
    "best_available_scorer",
]
