"""Turn detection on the input audio buffer (sans-I/O).

Theory of operation
-------------------
Audio is cut into frames; a *scorer* gives each frame a speech probability.
Speech *starts* at the first frame whose score reaches ``threshold``; the
reported ``audio_start_ms`` goes back ``prefix_padding_ms`` ("includes the
prefix_padding_ms configured in the Session"). Speech *stops* once
``silence_duration_ms`` of frames in a row score below ``threshold``; the
reported ``audio_end_ms`` is then ("includes the min_silence_duration_ms").

All times are milliseconds on the session's input timeline: audio written to
the buffer since the session began, never the wall clock.

The default scorer is :class:`EnergyScorer`: RMS level in dBFS, mapped
linearly from -60 dBFS (0.0) to -20 dBFS (1.0). A model scorer (Silero, see
:mod:`openrealtime.voice.vad`) plugs in through the same protocol.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from openrealtime import audio


__all__ = [
    "BatchScorer",
    "DetectorOp",
    "DetectorSettings",
    "EnergyScorer",
    "FrameScorer",
    "SpeechDetector",
    "TurnDetector",
    "TurnEvent",
]


class FrameScorer(Protocol):
    """Gives the speech probability of one PCM16 mono frame."""

    rate: int
    frame_samples: int

    def score(self, frame: bytes) -> float:
        """Speech probability, 0..1, of exactly ``frame_samples`` samples."""
        ...

    def reset(self) -> None:
        """Forget any state carried from frame to frame."""
        ...


class BatchScorer(FrameScorer, Protocol):
    """A scorer that can also score several frames of one stream at once.

    :class:`TurnDetector` uses :meth:`score_many` when a scorer has it: a
    model runtime pays a fixed cost per call (onnxruntime: about as much as
    a frame), so the frames of one feed go in one call. The result must be
    what :meth:`~FrameScorer.score` would give frame by frame, in order.
    """

    def score_many(self, frames: bytes) -> list[float]:
        """Speech probabilities of consecutive frames (a whole number of them)."""
        ...


class EnergyScorer:
    """A frame's RMS level mapped to 0..1 (-60 dBFS -> 0, -20 dBFS -> 1)."""

    __slots__ = ("frame_samples", "rate")

    def __init__(self, rate: int = 24000, frame_ms: int = 20) -> None:
        self.rate = rate
        self.frame_samples = rate * frame_ms // 1000

    def score(self, frame: bytes) -> float:
        """Map the frame's level to a probability."""
        samples = array("h", frame)
        if not samples:
            return 0.0
        power = sum(s * s for s in samples) / len(samples)
        if power <= 0:
            return 0.0
        dbfs = 10 * math.log10(power / (32768.0 * 32768.0))
        return min(1.0, max(0.0, (dbfs + 60.0) / 40.0))

    def reset(self) -> None:
        """Nothing to forget: each frame is scored alone."""


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """Speech started or stopped at ``ms`` on the input timeline."""

    kind: Literal["started", "stopped"]
    ms: int

    # Pickled by its fields (voice workers send these): a frozen slots
    # dataclass otherwise goes through dataclasses' Python-level
    # __getstate__/__setstate__, ~3x slower each way.
    def __reduce__(self) -> tuple[type[TurnEvent], tuple[str, int]]:
        return (TurnEvent, (self.kind, self.ms))


class TurnDetector:
    """Finds speech start and stop in a stream of PCM16 audio.

    Args:
        scorer: frame scorer; audio must be at ``scorer.rate``.
        threshold: activation threshold, 0..1.
        prefix_padding_ms: audio kept before detected speech.
        silence_duration_ms: silence that ends speech.
    """

    __slots__ = (
        "_pending",
        "_position",
        "_score_many",
        "_silence_ms",
        "_speech_start",
        "frame_ms",
        "in_speech",
        "prefix_padding_ms",
        "scorer",
        "silence_duration_ms",
        "threshold",
    )

    def __init__(
        self,
        scorer: FrameScorer,
        *,
        threshold: float,
        prefix_padding_ms: int,
        silence_duration_ms: int,
    ) -> None:
        self.scorer = scorer
        self._score_many: Callable[[bytes], list[float]] | None = getattr(
            scorer, "score_many", None
        )
        self.threshold = threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.frame_ms = scorer.frame_samples * 1000 / scorer.rate
        self.in_speech = False
        self._pending = b""
        self._position = 0.0  # ms of audio scored so far
        self._silence_ms = 0.0
        self._speech_start = 0.0

    def configure(
        self, *, threshold: float, prefix_padding_ms: int, silence_duration_ms: int
    ) -> None:
        """Change the settings; takes effect from the next frame."""
        self.threshold = threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms

    def skip(self, ms: float) -> None:
        """Advance the timeline over audio that is not scored."""
        self._position += ms

    def feed(self, pcm16: bytes) -> list[TurnEvent]:
        """Score new audio; return the turn events it completes."""
        return self.decide(self.score(self.take_frames(pcm16)))

    def take_frames(self, pcm16: bytes) -> bytes:
        """The whole frames that new audio completes (the rest waits).

        :meth:`feed` in two halves, for a caller that scores the frames of
        many detectors together: ``decide(scores of take_frames(pcm16))``.
        """
        data = self._pending + pcm16
        end = len(data) - len(data) % (self.scorer.frame_samples * 2)
        self._pending = data[end:]
        return data[:end]

    def score(self, frames: bytes) -> list[float]:
        """This detector's scorer on whole frames, in one run if it can."""
        size = self.scorer.frame_samples * 2
        if self._score_many is not None and len(frames) > size:
            return self._score_many(frames)
        score = self.scorer.score
        return [
            score(frames[offset : offset + size])
            for offset in range(0, len(frames), size)
        ]

    def decide(self, scores: Iterable[float]) -> list[TurnEvent]:
        """Advance over scored frames; return the turn events they complete."""
        events: list[TurnEvent] = []
        for probability in scores:
            speech = probability >= self.threshold
            start = self._position
            self._position += self.frame_ms
            if not self.in_speech:
                if speech:
                    self.in_speech = True
                    self._silence_ms = 0.0
                    self._speech_start = start
                    events.append(
                        TurnEvent(
                            "started", max(0, round(start - self.prefix_padding_ms))
                        )
                    )
            elif speech:
                self._silence_ms = 0.0
            else:
                self._silence_ms += self.frame_ms
                if self._silence_ms >= self.silence_duration_ms:
                    self.in_speech = False
                    events.append(TurnEvent("stopped", round(self._position)))
        return events

    def reset(self) -> None:
        """Drop speech state and partial frames (after a clear or a commit)."""
        self.in_speech = False
        self._silence_ms = 0.0
        self._position += len(self._pending) / 2 * 1000 / self.scorer.rate
        self._pending = b""
        self.scorer.reset()


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """What a :class:`SpeechDetector` needs to (re)start or be reconfigured.

    Attributes:
        rate: sample rate of the PCM16 audio it is fed.
        threshold: activation threshold, 0..1.
        prefix_padding_ms: audio kept before detected speech.
        silence_duration_ms: silence that ends speech.
        position_ms: where on the input timeline a new detector starts.
    """

    rate: int
    threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int
    position_ms: float = 0.0

    def __reduce__(
        self,
    ) -> tuple[type[DetectorSettings], tuple[int, float, int, int, float]]:
        return (
            DetectorSettings,
            (
                self.rate,
                self.threshold,
                self.prefix_padding_ms,
                self.silence_duration_ms,
                self.position_ms,
            ),
        )


@dataclass(frozen=True, slots=True)
class DetectorOp:
    """One step of turn detection, applied in order by :meth:`SpeechDetector.apply`.

    ``start`` builds a new detector (scorer, resampler) from ``settings``;
    ``configure`` changes the settings of the current one from its next
    frame; ``feed`` scores ``pcm16`` (PCM16 mono at the settings' rate);
    ``reset`` drops speech state and partial frames (a clear or a commit).
    The engine produces these; it applies them itself (inline) or hands them
    to its driver to apply elsewhere, in the same order (offload). A driver
    that cannot keep up may turn a ``feed`` into a ``skip`` of as many bytes:
    the timeline advances over that audio without scoring it.
    """

    kind: Literal["start", "configure", "feed", "reset", "skip"]
    pcm16: bytes = b""
    settings: DetectorSettings | None = None
    skip_bytes: int = 0

    # One per 40 ms append crosses to a voice worker: see TurnEvent.
    def __reduce__(
        self,
    ) -> tuple[type[DetectorOp], tuple[str, bytes, DetectorSettings | None, int]]:
        return (DetectorOp, (self.kind, self.pcm16, self.settings, self.skip_bytes))


class SpeechDetector:
    """A :class:`TurnDetector` with its scorer and resampler, driven by ops.

    Args:
        scorer_factory: makes the frame scorer for an input rate.
    """

    __slots__ = ("_detector", "_resampler", "scorer_factory")

    def __init__(self, scorer_factory: Callable[[int], FrameScorer]) -> None:
        self.scorer_factory = scorer_factory
        self._detector: TurnDetector | None = None
        self._resampler: audio.Resampler | None = None

    def apply(self, op: DetectorOp) -> list[TurnEvent]:
        """Apply one op; return the turn events it completes."""
        if op.kind == "start":
            assert op.settings is not None
            settings = op.settings
            scorer = self.scorer_factory(settings.rate)
            # A model scorer has its own rate (Silero: 16 kHz): resample to it.
            self._resampler = (
                audio.Resampler(settings.rate, scorer.rate)
                if scorer.rate != settings.rate
                else None
            )
            self._detector = TurnDetector(
                scorer,
                threshold=settings.threshold,
                prefix_padding_ms=settings.prefix_padding_ms,
                silence_duration_ms=settings.silence_duration_ms,
            )
            self._detector.skip(settings.position_ms)
            return []
        detector = self._detector
        if detector is None:
            raise ValueError(f"a {op.kind!r} op before 'start'")
        if op.kind == "configure":
            assert op.settings is not None
            detector.configure(
                threshold=op.settings.threshold,
                prefix_padding_ms=op.settings.prefix_padding_ms,
                silence_duration_ms=op.settings.silence_duration_ms,
            )
            return []
        if op.kind == "reset":
            detector.reset()
            return []
        if op.kind == "skip":
            rate = detector.scorer.rate
            if self._resampler is not None:
                rate = self._resampler.from_rate
                self._resampler = audio.Resampler(rate, detector.scorer.rate)
            detector.skip(op.skip_bytes / 2 * 1000 / rate)
            return []
        return detector.decide(detector.score(self.take_frames(op.pcm16)))

    @property
    def detector(self) -> TurnDetector:
        """The current detector (after a ``start`` op)."""
        if self._detector is None:
            raise ValueError("no detector before a 'start' op")
        return self._detector

    def take_frames(self, pcm16: bytes) -> bytes:
        """A ``feed`` op's first half: resample, then the whole frames at
        the scorer's rate that it completes. Its second half is
        ``detector.decide(scores)`` (see :meth:`TurnDetector.take_frames`)."""
        if self._resampler is not None:
            pcm16 = self._resampler.process(pcm16)
        return self.detector.take_frames(pcm16)
