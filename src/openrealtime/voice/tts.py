"""Offline speech synthesis behind a small streaming interface.

:class:`Synthesizer` is what the engine calls to voice a response: it
yields PCM16 24 kHz mono chunks as they are produced, and stopping the
iteration (``close()``, ``break``, garbage collection) cancels the work.

:class:`EspeakSynthesizer` drives Debian's ``espeak-ng`` binary as a
subprocess that writes WAV to a pipe, so audio streams while espeak is
still speaking. The PyPI ``espeakng`` package was considered and rejected:
it is a thin wrapper around the same binary that writes to a file or the
sound card, so it adds nothing and cannot stream.
"""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import IO, Final, Protocol, runtime_checkable

from openrealtime import audio


__all__ = [
    "DEFAULT_VOICE",
    "EspeakSynthesizer",
    "EspeakVoice",
    "OUTPUT_RATE",
    "SynthesisError",
    "Synthesizer",
    "VOICES",
    "available",
    "espeak_rate",
    "speak",
    "wav_chunks",
]

#: Output rate of every synthesizer (the ``audio/pcm`` rate).
OUTPUT_RATE: Final = 24000


@runtime_checkable
class Synthesizer(Protocol):
    """Turns text into streamed PCM16 24 kHz mono audio."""

    def synthesize(self, text: str, *, voice: str, speed: float) -> Iterator[bytes]:
        """Yield audio chunks for ``text`` as they are produced.

        Args:
            text: What to say.
            voice: A Realtime API voice name (e.g. ``"alloy"``).
            speed: Speaking rate, 0.25..1.5, 1.0 being normal.

        Returns:
            An iterator of PCM16 little-endian 24 kHz mono chunks; closing
            it early cancels synthesis.
        """
        ...


class SynthesisError(RuntimeError):
    """The speech engine failed (bad voice, crashed process, bad output)."""


@dataclass(frozen=True, slots=True)
class EspeakVoice:
    """How one Realtime API voice is rendered by espeak-ng.

    Attributes:
        name: espeak-ng ``-v`` argument: language plus ``+variant``.
        pitch: espeak-ng ``-p`` base pitch, 0..99 (50 is the default).
    """

    name: str
    pitch: int


#: The ten Realtime API voices. Language, variant and pitch are picked so
#: that each differs from the others in fundamental frequency, timbre or
#: accent (median F0 in Hz from ``bench`` measurements in the comments).
VOICES: Final[Mapping[str, EspeakVoice]] = MappingProxyType(
    {
        "alloy": EspeakVoice("en-us+f5", 40),  # 183, bright
        "ash": EspeakVoice("en-us+m3", 45),  # 98
        "ballad": EspeakVoice("en-gb-x-rp+m2", 55),  # 104, British
        "coral": EspeakVoice("en-us+f2", 55),  # 205
        "echo": EspeakVoice("en-us+m1", 30),  # 85, deep
        "sage": EspeakVoice("en-gb-x-rp+f4", 45),  # 170, British
        "shimmer": EspeakVoice("en-us+f3", 70),  # 245, high
        "verse": EspeakVoice("en-us+m7", 60),  # 122
        "marin": EspeakVoice("en-us+Annie", 50),  # 220
        "cedar": EspeakVoice("en-us+klatt4", 35),  # 93, dark (Klatt)
    }
)
#: Voice used for names not in :data:`VOICES`.
DEFAULT_VOICE: Final = "alloy"

_MIN_SPEED: Final = 0.25
_MAX_SPEED: Final = 1.5
_BASE_WPM: Final = 175
# espeak-ng will not speak slower than 80 wpm; below that, word gaps make
# up the difference. 7.5 gap units per unit of 1/speed was fitted on
# espeak-ng 1.51 so that 20 words at speed 0.25 last about 4x as long as
# at speed 1.0.
_ESPEAK_MIN_WPM: Final = 80
_GAP_PER_INV_SPEED: Final = 7.5
_READ_BYTES: Final = 4096


def espeak_rate(speed: float) -> tuple[int, int]:
    """Map a Realtime API speed to espeak-ng's ``-s`` and ``-g`` options.

    ``speed`` is clamped to 0.25..1.5; 1.0 is 175 words per minute and the
    rate scales linearly with it. Below espeak's floor of 80 wpm the
    remaining slow-down comes from pauses between words.

    Args:
        speed: Speaking rate, 1.0 being normal.

    Returns:
        ``(words_per_minute, word_gap)``, the gap in espeak's 10 ms units.
    """
    speed = min(max(speed, _MIN_SPEED), _MAX_SPEED)
    wpm = round(_BASE_WPM * speed)
    if wpm >= _ESPEAK_MIN_WPM:
        return wpm, 0
    gap = _GAP_PER_INV_SPEED * (1.0 / speed - _BASE_WPM / _ESPEAK_MIN_WPM)
    return _ESPEAK_MIN_WPM, max(round(gap), 0)


def available(executable: str = "espeak-ng") -> bool:
    """Return whether the espeak-ng binary can be found on ``PATH``.

    Args:
        executable: Name or path of the binary.

    Returns:
        True when it exists and is executable.
    """
    return shutil.which(executable) is not None


class _WavStream:
    """Incremental parser for a WAV byte stream of unknown length.

    espeak-ng writes a RIFF header with a placeholder size when the output
    is a pipe, so only the ``fmt`` chunk matters and ``data`` runs to EOF.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0
        self._riff = False
        self.rate: int | None = None
        self.in_data = False

    def feed(self, chunk: bytes) -> bytes:
        """Consume bytes and return any PCM16 sample data among them."""
        if self.in_data:
            return chunk
        self._buf += chunk
        while not self.in_data:
            if not self._riff:
                if len(self._buf) < 12:
                    return b""
                if self._buf[:4] != b"RIFF" or self._buf[8:12] != b"WAVE":
                    raise SynthesisError("espeak-ng did not write WAV audio")
                del self._buf[:12]
                self._riff = True
            if self._skip:
                n = min(self._skip, len(self._buf))
                del self._buf[:n]
                self._skip -= n
                if self._skip:
                    return b""
            if len(self._buf) < 8:
                return b""
            ident = bytes(self._buf[:4])
            size = struct.unpack_from("<I", self._buf, 4)[0]
            if ident == b"data":
                del self._buf[:8]
                if self.rate is None:
                    raise SynthesisError("WAV data came before its fmt chunk")
                self.in_data = True
            elif ident == b"fmt ":
                if len(self._buf) < 8 + 16:
                    return b""
                fmt_tag, channels, rate = struct.unpack_from("<HHI", self._buf, 8)
                bits = struct.unpack_from("<H", self._buf, 22)[0]
                if (fmt_tag, channels, bits) != (1, 1, 16):
                    raise SynthesisError(
                        "expected PCM16 mono WAV, got format "
                        f"{fmt_tag}, {channels} channel(s), {bits} bits"
                    )
                self.rate = rate
                del self._buf[:8]
                self._skip = size + (size & 1)
            else:
                del self._buf[:8]
                self._skip = size + (size & 1)
        data = bytes(self._buf)
        self._buf.clear()
        return data


class EspeakSynthesizer:
    """Speech synthesis with the espeak-ng binary.

    Each call runs one ``espeak-ng --stdout`` process; its WAV output
    (22050 Hz for the bundled voices) is resampled to 24 kHz as it streams
    and cut into chunks of ``chunk_ms``. Closing the iterator early kills
    the process and reaps it, so cancelling a response leaves nothing
    behind. Unknown voice names fall back to :data:`DEFAULT_VOICE`; speed
    is mapped by :func:`espeak_rate`.

    Args:
        executable: Name or path of the espeak-ng binary.
        chunk_ms: Length of each yielded chunk (the last one may be
            shorter).
    """

    rate: int = OUTPUT_RATE

    def __init__(self, executable: str = "espeak-ng", chunk_ms: int = 40) -> None:
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        self.executable = executable
        self.chunk_bytes = audio.bytes_for_ms(chunk_ms, "audio/pcm")

    def available(self) -> bool:
        """Return whether this synthesizer's binary can be found."""
        return available(self.executable)

    def command(self, *, voice: str, speed: float) -> list[str]:
        """Return the espeak-ng command line for a voice and speed.

        Args:
            voice: A Realtime API voice name.
            speed: Speaking rate, 1.0 being normal.

        Returns:
            The argument vector; the text goes to its standard input.
        """
        spec = VOICES.get(voice, VOICES[DEFAULT_VOICE])
        wpm, gap = espeak_rate(speed)
        # --stdin reads all text before speaking, so writing it cannot
        # deadlock against a full stdout pipe; -z drops the final pause.
        return [
            self.executable,
            "--stdout",
            "--stdin",
            "-b",
            "1",
            "-z",
            "-v",
            spec.name,
            "-p",
            str(spec.pitch),
            "-s",
            str(wpm),
            "-g",
            str(gap),
        ]

    def synthesize(self, text: str, *, voice: str, speed: float) -> Iterator[bytes]:
        """Yield PCM16 24 kHz mono chunks for ``text`` as espeak-ng speaks.

        No process starts until the iterator is first advanced.

        Args:
            text: What to say; blank text yields nothing.
            voice: A Realtime API voice name.
            speed: Speaking rate, 0.25..1.5.

        Returns:
            An iterator of chunks of ``chunk_bytes`` (the last may be
            shorter); close it to cancel.

        Raises:
            SynthesisError: While iterating, if espeak-ng fails.
        """
        return self._run(text, self.command(voice=voice, speed=speed))

    def _run(self, text: str, argv: list[str]) -> Iterator[bytes]:
        if not text.strip():
            return iter(())
        return speak(argv, "espeak-ng", self.rate, self.chunk_bytes, stdin=text)


def speak(
    argv: list[str],
    program: str,
    rate: int,
    chunk_bytes: int,
    *,
    stdin: str | None = None,
) -> Iterator[bytes]:
    """Run a speech program that writes a WAV to its stdout, and yield that
    audio as :func:`wav_chunks` does; closing the iterator kills the program.

    Args:
        argv: the command.
        program: its name, for errors.
        rate: the output rate.
        chunk_bytes: the size of the pieces yielded.
        stdin: text written to its standard input (``None``: none).

    Raises:
        SynthesisError: it cannot be started, or it failed.
    """
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
    except OSError as exc:
        raise SynthesisError(f"cannot run {argv[0]}: {exc}") from exc
    # Leaving the with block closes the pipes and reaps the process.
    with proc:
        try:
            if stdin is not None:
                pipe = _pipe(proc.stdin)
                # An early death of the program breaks the pipe; its exit
                # status, checked by wav_chunks, says why. The pipe is
                # unbuffered, so close() never writes.
                with contextlib.suppress(BrokenPipeError):
                    pipe.write(stdin.replace("\x00", " ").encode("utf-8"))
                pipe.close()
            yield from wav_chunks(proc, program, rate, chunk_bytes)
        finally:
            if proc.poll() is None:
                proc.kill()


def wav_chunks(
    proc: subprocess.Popen[bytes], program: str, rate: int, chunk_bytes: int
) -> Iterator[bytes]:
    """The WAV a speech program writes to its stdout, as PCM16 at ``rate`` in
    ``chunk_bytes`` pieces (the last one shorter), as it comes.

    Raises:
        SynthesisError: the program exited with a non-zero status.
    """
    stdout = _pipe(proc.stdout)
    wav = _WavStream()
    resampler: audio.Resampler | None = None
    pending = bytearray()
    while chunk := stdout.read(_READ_BYTES):
        pcm = wav.feed(chunk)
        if not pcm:
            continue
        if resampler is None:
            assert wav.rate is not None
            resampler = audio.Resampler(wav.rate, rate)
        pending += resampler.process(pcm)
        while len(pending) >= chunk_bytes:
            yield bytes(pending[:chunk_bytes])
            del pending[:chunk_bytes]
    if proc.wait() != 0:
        err = _pipe(proc.stderr).read().decode("utf-8", "replace").strip()
        raise SynthesisError(f"{program} exited with status {proc.returncode}: {err}")
    if resampler is None:  # nothing to say (punctuation only, say)
        return
    pending += resampler.flush()
    for start in range(0, len(pending), chunk_bytes):
        yield bytes(pending[start : start + chunk_bytes])


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    if stream is None:  # pragma: no cover - Popen was given PIPE
        raise SynthesisError("espeak-ng pipe missing")
    return stream
