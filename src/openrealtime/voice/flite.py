"""Speech synthesis with CMU Flite (Debian ``flite``), clearer than espeak-ng.

Flite's voices are far easier to understand than espeak-ng's: a Whisper
listener misreads 2.6-8.4 % of the words of ``rms``, ``slt``, ``awb`` and
``kal16`` against 15.5 % for espeak-ng (issue 16, ``bench/README.md``), at
a real-time factor of 0.004-0.04. Flite is BSD-style licensed and its
Debian package (28 MB) carries its voices, so nothing is downloaded.

:class:`FliteSynthesizer` runs one ``flite`` process per piece of text (the
:class:`~openrealtime.responders.voice.SpeakingResponder` hands it one
sentence at a time) and streams its WAV output, resampled to 24 kHz, in
chunks. Closing the iterator early kills the process.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from openrealtime import audio
from openrealtime.voice.tts import (
    DEFAULT_VOICE,
    OUTPUT_RATE,
    speak,
)


__all__ = ["FliteSynthesizer", "FliteVoice", "VOICES", "available", "flite_stretch"]


@dataclass(frozen=True, slots=True)
class FliteVoice:
    """How one Realtime API voice is rendered by flite.

    Attributes:
        name: flite ``-voice`` argument (a voice built into Debian's flite).
        f0: Target mean pitch in Hz (``int_f0_target_mean``); None keeps the
            voice's own (``rms`` ignores the setting).
    """

    name: str
    f0: int | None = None


#: The ten Realtime API voices on flite's four clear voices (``slt`` US
#: female, ``rms`` US male, ``awb`` Scottish male, ``kal16`` US male
#: diphone), made distinct by voice and pitch (median F0 in the comments).
VOICES: Final[Mapping[str, FliteVoice]] = MappingProxyType(
    {
        "alloy": FliteVoice("slt", 175),
        "ash": FliteVoice("rms"),  # 101
        "ballad": FliteVoice("awb", 115),
        "coral": FliteVoice("slt", 205),
        "echo": FliteVoice("kal16", 85),  # deep
        "sage": FliteVoice("slt", 150),
        "shimmer": FliteVoice("slt", 235),  # high
        "verse": FliteVoice("kal16", 120),
        "marin": FliteVoice("kal16", 150),
        "cedar": FliteVoice("awb", 92),  # dark
    }
)

_MIN_SPEED: Final = 0.25
_MAX_SPEED: Final = 1.5


def flite_stretch(speed: float) -> float:
    """flite's ``duration_stretch`` for a Realtime API speed (clamped 0.25..1.5)."""
    return 1.0 / min(max(speed, _MIN_SPEED), _MAX_SPEED)


def available(executable: str = "flite") -> bool:
    """Return whether the flite binary can be found on ``PATH``."""
    return shutil.which(executable) is not None


class FliteSynthesizer:
    """Speech synthesis with the flite binary.

    Unknown voice names fall back to :data:`~openrealtime.voice.tts.DEFAULT_VOICE`;
    ``speed`` stretches durations without changing pitch.

    Args:
        executable: Name or path of the flite binary.
        chunk_ms: Length of each yielded chunk (the last one may be shorter).
    """

    rate: int = OUTPUT_RATE

    def __init__(self, executable: str = "flite", chunk_ms: int = 40) -> None:
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        self.executable = executable
        self.chunk_bytes = audio.bytes_for_ms(chunk_ms, "audio/pcm")

    def available(self) -> bool:
        """Return whether this synthesizer's binary can be found."""
        return available(self.executable)

    def command(self, text: str, *, voice: str, speed: float) -> list[str]:
        """Return the flite command line that speaks ``text`` to standard output."""
        spec = VOICES.get(voice, VOICES[DEFAULT_VOICE])
        argv = [self.executable, "-voice", spec.name]
        if spec.f0 is not None:
            argv += ["--setf", f"int_f0_target_mean={spec.f0}"]
        argv += ["--setf", f"duration_stretch={flite_stretch(speed):.4f}"]
        # -t takes the next argument as text, whatever it starts with.
        return [*argv, "-t", text.replace("\x00", " "), "-o", "/dev/stdout"]

    def synthesize(self, text: str, *, voice: str, speed: float) -> Iterator[bytes]:
        """Yield PCM16 24 kHz mono chunks for ``text``.

        No process starts until the iterator is first advanced.

        Raises:
            SynthesisError: While iterating, if flite fails.
        """
        return self._run(text, voice, speed)

    def _run(self, text: str, voice: str, speed: float) -> Iterator[bytes]:
        if not text.strip():
            return iter(())
        argv = self.command(text, voice=voice, speed=speed)
        return speak(argv, "flite", self.rate, self.chunk_bytes)
