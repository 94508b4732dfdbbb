"""Audio primitives for the three Realtime API GA formats.

Everything here is a pure, synchronous function (or a small stateful
:class:`Resampler`) so the sans-I/O engine can call it inline.

Formats:

* ``"audio/pcm"``: PCM16 little-endian mono at 24 kHz.
* ``"audio/pcmu"``: ITU-T G.711 mu-law, 8 kHz, one byte per sample.
* ``"audio/pcma"``: ITU-T G.711 A-law, 8 kHz, one byte per sample.

The G.711 codecs follow the ITU-T G.191 reference implementation (the
same arithmetic as CPython's removed ``audioop`` module) and are done with
lookup tables built once at import: 256 entries to decode, 65536 entries
(indexed by the ``uint16`` view of a sample) to encode.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]

from openrealtime.typing import AudioFormatType


__all__ = [
    "AudioFormatType",
    "FORMATS",
    "Resampler",
    "alaw_decode",
    "alaw_encode",
    "bytes_for_ms",
    "bytes_per_sample",
    "duration_ms",
    "from_pcm16",
    "resample",
    "rms",
    "sample_rate",
    "silence",
    "to_pcm16",
    "tone",
    "ulaw_decode",
    "ulaw_encode",
]

#: Every supported format with its sample rate in Hz.
FORMATS: Final[dict[str, int]] = {
    "audio/pcm": 24000,
    "audio/pcmu": 8000,
    "audio/pcma": 8000,
}

_PCM16: Final = np.dtype("<i2")
# "HQ" is soxr's default quality; its latency (a few ms) is fine for speech.
_SOXR_QUALITY: Final = "HQ"


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(
            f"unsupported audio format {fmt!r}; expected one of {sorted(FORMATS)}"
        )


def sample_rate(fmt: AudioFormatType) -> int:
    """Return the sample rate of an audio format.

    Args:
        fmt: One of the GA audio format names.

    Returns:
        The rate in Hz (24000 for PCM, 8000 for G.711).

    Raises:
        ValueError: If ``fmt`` is not a supported format.
    """
    _check_format(fmt)
    return FORMATS[fmt]


def bytes_per_sample(fmt: AudioFormatType) -> int:
    """Return how many bytes one mono sample takes in a format.

    Args:
        fmt: One of the GA audio format names.

    Returns:
        2 for PCM16, 1 for G.711.

    Raises:
        ValueError: If ``fmt`` is not a supported format.
    """
    _check_format(fmt)
    return 2 if fmt == "audio/pcm" else 1


def duration_ms(nbytes: int, fmt: AudioFormatType) -> int:
    """Return the duration of ``nbytes`` of audio, floored to a millisecond.

    A trailing partial sample counts as nothing.

    Args:
        nbytes: Length of the audio in bytes.
        fmt: The audio format.

    Returns:
        Whole milliseconds of audio.
    """
    samples = nbytes // bytes_per_sample(fmt)
    return samples * 1000 // sample_rate(fmt)


def bytes_for_ms(ms: float, fmt: AudioFormatType) -> int:
    """Return the number of bytes holding ``ms`` milliseconds of audio.

    The sample count is floored, so the result is always a whole number of
    samples.

    Args:
        ms: Duration in milliseconds (fractions allowed).
        fmt: The audio format.

    Returns:
        Byte count, a multiple of :func:`bytes_per_sample`.
    """
    samples = math.floor(ms * sample_rate(fmt) / 1000)
    return max(samples, 0) * bytes_per_sample(fmt)


# --- G.711 -----------------------------------------------------------------
# The segment end points below are the ITU-T G.191 tables: mu-law works on
# 14-bit magnitudes with a bias of 0x21, A-law on 13-bit magnitudes.
_SEG_UEND: Final = np.array(
    [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32
)
_SEG_AEND: Final = np.array(
    [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32
)
_ULAW_BIAS: Final = 0x21
_ULAW_CLIP: Final = 8159


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    # Index i is the uint16 view of the sample, so view it back as int16.
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    val = pcm >> 2
    mask = np.where(val < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(val), _ULAW_CLIP) + _ULAW_BIAS
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    code = (seg << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    # Only the clipped full-scale magnitude lands past the last segment.
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(_PCM16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    val = pcm >> 3
    mask = np.where(val >= 0, 0xD5, 0x55)
    mag = np.where(val >= 0, val, -val - 1)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(_PCM16)


_ULAW_ENC: Final = _build_ulaw_encode()
_ULAW_DEC: Final = _build_ulaw_decode()
_ALAW_ENC: Final = _build_alaw_encode()
_ALAW_DEC: Final = _build_alaw_decode()


def _samples(pcm16: bytes) -> npt.NDArray[np.int16]:
    if len(pcm16) % 2:
        raise ValueError(
            f"PCM16 audio must have an even number of bytes, got {len(pcm16)}"
        )
    return np.frombuffer(pcm16, dtype=_PCM16)


def ulaw_encode(pcm16: bytes) -> bytes:
    """Encode PCM16 little-endian samples to G.711 mu-law.

    Args:
        pcm16: PCM16 little-endian mono audio (any rate).

    Returns:
        One mu-law byte per input sample.

    Raises:
        ValueError: If ``pcm16`` has an odd length.
    """
    return _ULAW_ENC[_samples(pcm16).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """Decode G.711 mu-law bytes to PCM16 little-endian samples.

    Args:
        data: Mu-law audio, one byte per sample.

    Returns:
        PCM16 little-endian audio, two bytes per input byte.
    """
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()


def alaw_encode(pcm16: bytes) -> bytes:
    """Encode PCM16 little-endian samples to G.711 A-law.

    Args:
        pcm16: PCM16 little-endian mono audio (any rate).

    Returns:
        One A-law byte per input sample.

    Raises:
        ValueError: If ``pcm16`` has an odd length.
    """
    return _ALAW_ENC[_samples(pcm16).view(np.uint16)].tobytes()


def alaw_decode(data: bytes) -> bytes:
    """Decode G.711 A-law bytes to PCM16 little-endian samples.

    Args:
        data: A-law audio, one byte per sample.

    Returns:
        PCM16 little-endian audio, two bytes per input byte.
    """
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()


# --- Resampling --------------------------------------------------------------
# soxr dithers when it writes int16 itself, which turns digital silence into
# +-1 LSB noise (enough to trigger WebRTC's VAD), so it works in float32 and
# rounding to int16 happens here.
def _from_float(x: npt.ArrayLike) -> bytes:
    y = np.rint(np.asarray(x, dtype=np.float32))
    return np.clip(y, -32768, 32767).astype(_PCM16).tobytes()


def _check_rate(rate: int) -> None:
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")


def resample(pcm16: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole PCM16 mono buffer.

    Args:
        pcm16: PCM16 little-endian mono audio.
        from_rate: Its sample rate in Hz.
        to_rate: The wanted sample rate in Hz.

    Returns:
        PCM16 little-endian audio at ``to_rate`` (the input itself when the
        rates are equal).

    Raises:
        ValueError: If a rate is not positive or ``pcm16`` has an odd length.
    """
    _check_rate(from_rate)
    _check_rate(to_rate)
    samples = _samples(pcm16)
    if from_rate == to_rate or samples.size == 0:
        return bytes(pcm16)
    out = soxr.resample(
        samples.astype(np.float32), from_rate, to_rate, quality=_SOXR_QUALITY
    )
    return _from_float(out)


class Resampler:
    """Streaming PCM16 mono resampler for chunked audio.

    Chunks may have any length, odd ones included: a dangling byte is kept
    until the next chunk completes the sample. The output lags the input
    by the filter delay; :meth:`flush` drains it at the end of a stream.

    Args:
        from_rate: Input sample rate in Hz.
        to_rate: Output sample rate in Hz.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        _check_rate(from_rate)
        _check_rate(to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._pending = b""
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.from_rate == self.to_rate:
            return None
        return soxr.ResampleStream(
            self.from_rate, self.to_rate, 1, dtype="float32", quality=_SOXR_QUALITY
        )

    def process(self, chunk: bytes) -> bytes:
        """Feed a chunk and return whatever output is ready.

        Args:
            chunk: PCM16 little-endian bytes at ``from_rate``.

        Returns:
            PCM16 little-endian bytes at ``to_rate`` (possibly empty).
        """
        data = self._pending + chunk
        cut = len(data) - len(data) % 2
        self._pending = data[cut:]
        whole = data[:cut]
        if self._stream is None:
            return whole
        samples = np.frombuffer(whole, dtype=_PCM16).astype(np.float32)
        return _from_float(self._stream.resample_chunk(samples))

    def flush(self) -> bytes:
        """Drain the filter at the end of a stream and reset for reuse.

        A dangling odd byte is dropped.

        Returns:
            The remaining PCM16 little-endian output.
        """
        self._pending = b""
        if self._stream is None:
            return b""
        out = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        # soxr's clear() leaves some filter state behind; start afresh instead.
        self._stream = self._new_stream()
        return _from_float(out)


class ChunkBuffer:
    """Bytes appended in pieces and joined only when read: an input buffer.

    A ``bytearray`` that grows while other sessions' buffers grow beside it
    cannot be extended in place, so ``realloc`` moves it, copying all of it,
    every few appends: with 60 sessions streaming, about 6 µs per 40 ms
    append, and rising with the buffer's length. Here an append keeps the
    decoded ``bytes`` as they are (no copy at all), and a read joins them
    once; after a read the joined bytes are the one chunk left.
    """

    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        """Add ``data`` at the end (kept, not copied: pass immutable bytes)."""
        self._chunks.append(data)
        self._size += len(data)

    def _joined(self) -> bytes:
        chunks = self._chunks
        if len(chunks) == 1:
            return chunks[0]
        joined = b"".join(chunks)
        self._chunks = [joined] if joined else []
        return joined

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """``bytes(buffer[start:end])``."""
        return self._joined()[start:end]

    def drop(self, end: int) -> None:
        """Remove the first ``end`` bytes."""
        rest = self._joined()[end:]
        self._chunks = [rest] if rest else []
        self._size = len(rest)

    def clear(self) -> None:
        """Remove everything."""
        self._chunks = []
        self._size = 0


# --- Format conversion -------------------------------------------------------
def to_pcm16(data: bytes, fmt: AudioFormatType) -> tuple[bytes, int]:
    """Decode audio in any GA format to PCM16.

    No resampling happens: G.711 input stays at 8 kHz.

    Args:
        data: Audio bytes in format ``fmt``.
        fmt: The format of ``data``.

    Returns:
        ``(pcm16, rate)``: PCM16 little-endian audio and its rate in Hz.

    Raises:
        ValueError: If ``fmt`` is not supported.
    """
    rate = sample_rate(fmt)
    if fmt == "audio/pcmu":
        return ulaw_decode(data), rate
    if fmt == "audio/pcma":
        return alaw_decode(data), rate
    return bytes(data), rate


def from_pcm16(pcm: bytes, rate: int, fmt: AudioFormatType) -> bytes:
    """Convert PCM16 audio at any rate to a GA format.

    Args:
        pcm: PCM16 little-endian mono audio.
        rate: Its sample rate in Hz.
        fmt: The target format.

    Returns:
        Audio resampled to the format's rate and encoded.

    Raises:
        ValueError: If ``fmt`` is not supported, ``rate`` is not positive or
            ``pcm`` has an odd length.
    """
    out = resample(pcm, rate, sample_rate(fmt))
    if fmt == "audio/pcmu":
        return ulaw_encode(out)
    if fmt == "audio/pcma":
        return alaw_encode(out)
    return out


# --- Signal helpers ----------------------------------------------------------
def _n_samples(ms: float, rate: int) -> int:
    _check_rate(rate)
    return max(math.floor(ms * rate / 1000), 0)


def tone(
    ms: float, rate: int = 24000, freq: float = 440.0, amplitude: float = 0.3
) -> bytes:
    """Generate a sine tone as PCM16.

    Args:
        ms: Duration in milliseconds.
        rate: Sample rate in Hz.
        freq: Frequency in Hz.
        amplitude: Peak level as a fraction of full scale (clipped to 0..1).

    Returns:
        PCM16 little-endian mono audio.
    """
    n = _n_samples(ms, rate)
    level = min(max(amplitude, 0.0), 1.0) * 32767
    t = np.arange(n, dtype=np.float64) / rate
    wave = np.rint(level * np.sin(2 * np.pi * freq * t))
    return wave.astype(_PCM16).tobytes()


def silence(ms: float, rate: int) -> bytes:
    """Generate digital silence as PCM16.

    Args:
        ms: Duration in milliseconds.
        rate: Sample rate in Hz.

    Returns:
        Zero-valued PCM16 bytes.
    """
    return bytes(2 * _n_samples(ms, rate))


def rms(pcm16: bytes) -> float:
    """Return the RMS level of PCM16 audio, normalised to 0..1.

    1.0 is a full-scale square wave; a full-scale sine is about 0.707.

    Args:
        pcm16: PCM16 little-endian mono audio.

    Returns:
        The RMS level divided by 32768 (0.0 for empty input).

    Raises:
        ValueError: If ``pcm16`` has an odd length.
    """
    samples = _samples(pcm16)
    if samples.size == 0:
        return 0.0
    x = samples.astype(np.float64)
    return min(float(np.sqrt(np.mean(x * x))) / 32768.0, 1.0)
