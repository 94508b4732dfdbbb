"""Tests for openrealtime.audio: formats, G.711, resampling and helpers."""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from openrealtime import audio
from openrealtime.audio import AudioFormatType


__all__: list[str] = []

ALL_PCM16 = np.arange(-32768, 32768, dtype=np.int32).astype("<i2").tobytes()
ALL_CODES = bytes(range(256))


def _arr(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.int64)


# --- format arithmetic -------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "rate", "width"),
    [("audio/pcm", 24000, 2), ("audio/pcmu", 8000, 1), ("audio/pcma", 8000, 1)],
)
def test_rate_and_width(fmt: AudioFormatType, rate: int, width: int) -> None:
    assert audio.sample_rate(fmt) == rate
    assert audio.bytes_per_sample(fmt) == width
    assert audio.FORMATS[fmt] == rate


@pytest.mark.parametrize(
    "call",
    [
        lambda: audio.sample_rate("audio/wav"),  # type: ignore[arg-type]
        lambda: audio.bytes_per_sample("pcm16"),  # type: ignore[arg-type]
        lambda: audio.to_pcm16(b"", "g711_ulaw"),  # type: ignore[arg-type]
        lambda: audio.from_pcm16(b"", 24000, "x"),  # type: ignore[arg-type]
    ],
)
def test_unknown_format_rejected(call: object) -> None:
    with pytest.raises(ValueError, match="unsupported audio format"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("nbytes", "fmt", "ms"),
    [
        (48000, "audio/pcm", 1000),
        (48, "audio/pcm", 1),
        (47, "audio/pcm", 0),  # 23.5 samples: floor
        (49, "audio/pcm", 1),  # dangling byte ignored
        (4800, "audio/pcm", 100),
        (0, "audio/pcm", 0),
        (8000, "audio/pcmu", 1000),
        (7, "audio/pcmu", 0),
        (8, "audio/pcma", 1),
        (1601, "audio/pcma", 200),
    ],
)
def test_duration_ms(nbytes: int, fmt: AudioFormatType, ms: int) -> None:
    assert audio.duration_ms(nbytes, fmt) == ms


@pytest.mark.parametrize(
    ("ms", "fmt", "nbytes"),
    [
        (1000, "audio/pcm", 48000),
        (20, "audio/pcm", 960),
        (0.5, "audio/pcm", 24),
        (0.01, "audio/pcm", 0),
        (-5, "audio/pcm", 0),
        (20, "audio/pcmu", 160),
        (20, "audio/pcma", 160),
        (0.2, "audio/pcma", 1),
    ],
)
def test_bytes_for_ms(ms: float, fmt: AudioFormatType, nbytes: int) -> None:
    assert audio.bytes_for_ms(ms, fmt) == nbytes


@given(
    ms=st.integers(min_value=0, max_value=10**7),
    fmt=st.sampled_from(["audio/pcm", "audio/pcmu", "audio/pcma"]),
)
def test_bytes_for_ms_round_trips(ms: int, fmt: AudioFormatType) -> None:
    assert audio.duration_ms(audio.bytes_for_ms(ms, fmt), fmt) == ms


# --- G.711 -------------------------------------------------------------------
# Reference points from the ITU-T G.711 tables (segment edges and extremes).
ULAW_DECODE_REF = {
    0x00: -32124,
    0x0F: -16764,
    0x10: -15996,
    0x70: -120,
    0x7E: -8,
    0x7F: 0,
    0x80: 32124,
    0x8F: 16764,
    0xEF: 132,
    0xF0: 120,
    0xFE: 8,
    0xFF: 0,
}
ULAW_ENCODE_REF = {
    0: 0xFF,
    -1: 0x7E,
    1: 0xFF,
    4: 0xFE,
    -4: 0x7E,
    100: 0xF2,
    1000: 0xCE,
    -1000: 0x4E,
    32767: 0x80,
    -32768: 0x00,
}
ALAW_DECODE_REF = {
    0xD5: 8,
    0x55: -8,
    0xD4: 24,
    0xC5: 264,
    0xAA: 32256,
    0x2A: -32256,
    0x80: 5504,
    0x00: -5504,
}
ALAW_ENCODE_REF = {
    0: 0xD5,
    -1: 0x55,
    -8: 0x55,
    -9: 0x55,
    -17: 0x54,
    15: 0xD5,
    16: 0xD4,
    1000: 0xFA,
    -1000: 0x7A,
    32767: 0xAA,
    -32768: 0x2A,
}


def _pcm(*values: int) -> bytes:
    return np.array(values, dtype="<i2").tobytes()


def test_ulaw_reference_values() -> None:
    decoded = _arr(audio.ulaw_decode(bytes(ULAW_DECODE_REF)))
    assert decoded.tolist() == list(ULAW_DECODE_REF.values())
    encoded = audio.ulaw_encode(_pcm(*ULAW_ENCODE_REF))
    assert list(encoded) == list(ULAW_ENCODE_REF.values())


def test_alaw_reference_values() -> None:
    decoded = _arr(audio.alaw_decode(bytes(ALAW_DECODE_REF)))
    assert decoded.tolist() == list(ALAW_DECODE_REF.values())
    encoded = audio.alaw_encode(_pcm(*ALAW_ENCODE_REF))
    assert list(encoded) == list(ALAW_ENCODE_REF.values())


def test_ulaw_decode_is_odd_symmetric_and_monotonic() -> None:
    dec = _arr(audio.ulaw_decode(ALL_CODES))
    # Codes 0x80..0xFF are positive and mirror 0x00..0x7F.
    assert (dec[0x80:] == -dec[:0x80]).all()
    assert (np.diff(dec[0x80:]) < 0).all()


def test_alaw_decode_is_odd_symmetric() -> None:
    dec = _arr(audio.alaw_decode(ALL_CODES))
    assert (dec[0x80:] == -dec[:0x80]).all()
    assert sorted(set(np.abs(dec).tolist())) == sorted(np.abs(dec[0x80:]).tolist())


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(audio.ulaw_encode, audio.ulaw_decode), (audio.alaw_encode, audio.alaw_decode)],
)
def test_round_trip_within_quantisation_error(encode: object, decode: object) -> None:
    # Every 16-bit value: the error is at most half a step of its segment,
    # which for G.711 is |x|/32 plus the coarsest fixed step.
    out = _arr(decode(encode(ALL_PCM16)))  # type: ignore[operator]
    x = _arr(ALL_PCM16)
    assert (np.abs(out - x) <= np.abs(x) / 32 + 8).all()


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(audio.ulaw_encode, audio.ulaw_decode), (audio.alaw_encode, audio.alaw_decode)],
)
def test_codes_are_stable(encode: object, decode: object) -> None:
    again = encode(decode(ALL_CODES))  # type: ignore[operator]
    diff = [i for i in range(256) if again[i] != i]
    # Mu-law has two zeros (0x7F and 0xFF); encoding 0 picks 0xFF.
    assert diff == ([0x7F] if encode is audio.ulaw_encode else [])


def test_encode_matches_audioop_when_available() -> None:
    # audioop is the historical reference; it is gone from Python 3.13.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            audioop = importlib.import_module("audioop")
        except ImportError:
            pytest.skip("audioop not available on this Python")
    assert audio.ulaw_encode(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16, 2)
    assert audio.alaw_encode(ALL_PCM16) == audioop.lin2alaw(ALL_PCM16, 2)
    assert audio.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert audio.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_codec_lengths_and_empty() -> None:
    assert audio.ulaw_encode(b"") == b""
    assert audio.alaw_decode(b"") == b""
    assert len(audio.ulaw_decode(b"\x01\x02\x03")) == 6
    assert len(audio.alaw_encode(b"\x00" * 10)) == 5


@pytest.mark.parametrize(
    "call",
    [
        lambda: audio.ulaw_encode(b"\x00"),
        lambda: audio.alaw_encode(b"\x00\x00\x00"),
        lambda: audio.resample(b"\x00", 8000, 16000),
        lambda: audio.rms(b"\x01"),
    ],
)
def test_odd_pcm16_rejected(call: object) -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        call()  # type: ignore[operator]


# --- resampling --------------------------------------------------------------
def _dominant_freq(pcm16: bytes, rate: int) -> float:
    x = _arr(pcm16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum)) * rate / x.size


@pytest.mark.parametrize(
    ("src", "dst"), [(24000, 8000), (8000, 24000), (22050, 24000), (24000, 16000)]
)
def test_resample_keeps_duration_and_pitch(src: int, dst: int) -> None:
    pcm = audio.tone(500, rate=src, freq=440.0)
    out = audio.resample(pcm, src, dst)
    assert len(out) // 2 == pytest.approx(len(pcm) // 2 * dst / src, abs=1)
    assert _dominant_freq(out, dst) == pytest.approx(440.0, abs=5)
    assert audio.rms(out) == pytest.approx(audio.rms(pcm), rel=0.05)


@pytest.mark.parametrize(("src", "dst"), [(24000, 16000), (8000, 24000)])
def test_resample_keeps_digital_silence_silent(src: int, dst: int) -> None:
    # No dither: silence must stay exactly zero for VADs and G.711.
    assert audio.resample(audio.silence(200, src), src, dst) == audio.silence(200, dst)
    r = audio.Resampler(src, dst)
    out = r.process(audio.silence(200, src)) + r.flush()
    assert out == audio.silence(200, dst)


def test_resample_clips_overshoot() -> None:
    # A full-scale square wave rings past full scale when filtered.
    square = np.tile(np.array([32767] * 20 + [-32768] * 20, dtype="<i2"), 50)
    out = _arr(audio.resample(square.tobytes(), 24000, 16000))
    assert out.max() == 32767
    assert out.min() == -32768


def test_resample_same_rate_and_empty() -> None:
    pcm = audio.tone(10)
    assert audio.resample(pcm, 24000, 24000) == pcm
    assert audio.resample(b"", 24000, 8000) == b""


@pytest.mark.parametrize("rate", [0, -8000])
def test_resample_rejects_bad_rates(rate: int) -> None:
    with pytest.raises(ValueError, match="sample rate must be positive"):
        audio.resample(b"", rate, 8000)
    with pytest.raises(ValueError, match="sample rate must be positive"):
        audio.Resampler(8000, rate)
    with pytest.raises(ValueError, match="sample rate must be positive"):
        audio.silence(10, rate)


@pytest.mark.parametrize("chunk", [1, 333, 4801])
def test_streaming_resampler_matches_whole_buffer(chunk: int) -> None:
    pcm = audio.tone(300, rate=22050, freq=300.0)
    r = audio.Resampler(22050, 24000)
    out = b"".join(r.process(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk))
    out += r.flush()
    whole = audio.resample(pcm, 22050, 24000)
    assert len(out) == len(whole)
    # The streaming filter equals the one-shot filter up to rounding.
    assert np.abs(_arr(out) - _arr(whole)).max() <= 2


def test_streaming_resampler_is_reusable_after_flush() -> None:
    r = audio.Resampler(8000, 24000)
    pcm = audio.tone(100, rate=8000)
    first = r.process(pcm) + r.flush()
    second = r.process(pcm) + r.flush()
    assert first == second
    assert len(first) == 3 * len(pcm)


def test_streaming_resampler_same_rate_passthrough() -> None:
    r = audio.Resampler(24000, 24000)
    assert r.process(b"\x01") == b""
    assert r.process(b"\x02\x03") == b"\x01\x02"
    assert r.flush() == b""  # the dangling b"\x03" is dropped
    assert r.process(b"\x04\x05") == b"\x04\x05"
    assert (r.from_rate, r.to_rate) == (24000, 24000)


def test_streaming_resampler_drops_dangling_byte_on_flush() -> None:
    r = audio.Resampler(24000, 8000)
    out = r.process(audio.tone(100) + b"\x7f") + r.flush()
    assert len(out) == 2 * 800


# --- conversions -------------------------------------------------------------
def test_to_pcm16_each_format() -> None:
    pcm = audio.tone(20)
    assert audio.to_pcm16(pcm, "audio/pcm") == (pcm, 24000)
    assert audio.to_pcm16(b"\xff\x80", "audio/pcmu") == (_pcm(0, 32124), 8000)
    assert audio.to_pcm16(b"\xd5\xaa", "audio/pcma") == (_pcm(8, 32256), 8000)


@pytest.mark.parametrize("fmt", ["audio/pcm", "audio/pcmu", "audio/pcma"])
def test_from_pcm16_then_back(fmt: AudioFormatType) -> None:
    pcm = audio.tone(200, rate=16000, freq=500.0, amplitude=0.5)
    encoded = audio.from_pcm16(pcm, 16000, fmt)
    assert audio.duration_ms(len(encoded), fmt) == 200
    back, rate = audio.to_pcm16(encoded, fmt)
    assert rate == audio.sample_rate(fmt)
    assert _dominant_freq(back, rate) == pytest.approx(500.0, abs=6)
    assert audio.rms(back) == pytest.approx(audio.rms(pcm), rel=0.05)


def test_from_pcm16_pcm_at_native_rate_is_identity() -> None:
    pcm = audio.tone(20)
    assert audio.from_pcm16(pcm, 24000, "audio/pcm") == pcm


# --- helpers -----------------------------------------------------------------
def test_tone_shape_and_level() -> None:
    pcm = audio.tone(100, rate=8000, freq=1000.0, amplitude=0.5)
    assert len(pcm) == 1600
    x = _arr(pcm)
    assert x.max() == pytest.approx(16384, abs=2)
    assert audio.rms(pcm) == pytest.approx(0.5 / math.sqrt(2), rel=0.01)
    assert _dominant_freq(pcm, 8000) == pytest.approx(1000.0, abs=10)


def test_tone_defaults_and_clipping() -> None:
    assert len(audio.tone(10)) == 480
    assert audio.tone(10, amplitude=3.0) == audio.tone(10, amplitude=1.0)
    assert _arr(audio.tone(10, amplitude=1.0)).max() > 32000
    assert audio.tone(10, amplitude=-1.0) == bytes(480)
    assert audio.tone(0) == b""


def test_silence() -> None:
    assert audio.silence(10, 24000) == bytes(480)
    assert audio.silence(20, 8000) == bytes(320)
    assert audio.silence(-1, 8000) == b""
    assert audio.rms(audio.silence(10, 24000)) == 0.0


def test_rms_bounds() -> None:
    assert audio.rms(b"") == 0.0
    assert audio.rms(_pcm(-32768, -32768)) == 1.0
    assert audio.rms(_pcm(16384, -16384)) == 0.5


@settings(max_examples=50)
@given(st.binary(max_size=400).map(lambda b: b[: len(b) - len(b) % 2]))
def test_rms_in_unit_range(pcm: bytes) -> None:
    assert 0.0 <= audio.rms(pcm) <= 1.0


def test_chunk_buffer_reads_what_a_bytearray_would() -> None:
    buffer = audio.ChunkBuffer()
    model = bytearray()
    assert len(buffer) == 0 and buffer.read() == b""
    for piece in (b"abc", b"", b"defg", b"h"):
        buffer.append(piece)
        model += piece
    assert len(buffer) == len(model) == 8
    assert buffer.read() == bytes(model)
    assert buffer.read(2, 5) == bytes(model[2:5])
    buffer.append(b"ijk")
    model += b"ijk"
    assert buffer.read(6) == bytes(model[6:])
    buffer.drop(4)
    del model[:4]
    assert len(buffer) == len(model) and buffer.read() == bytes(model)
    buffer.drop(len(model))
    assert len(buffer) == 0 and buffer.read() == b""
    buffer.append(b"xy")
    buffer.clear()
    assert len(buffer) == 0 and buffer.read() == b""


def test_chunk_buffer_keeps_an_append_without_copying_it() -> None:
    buffer = audio.ChunkBuffer()
    data = bytes(1000)
    buffer.append(data)
    assert buffer.read() is data


_BUFFER_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=20)),
        st.tuples(st.just("drop"), st.integers(0, 30)),
        st.tuples(st.just("read"), st.integers(0, 30)),
        st.tuples(st.just("clear"), st.just(0)),
    ),
    max_size=30,
)


@given(_BUFFER_OPS)
@settings(max_examples=200, deadline=None)
def test_chunk_buffer_matches_a_bytearray_under_any_ops(
    ops: list[tuple[str, object]],
) -> None:
    buffer = audio.ChunkBuffer()
    model = bytearray()
    for op, arg in ops:
        if op == "append":
            assert isinstance(arg, bytes)
            buffer.append(arg)
            model += arg
        elif op == "drop":
            assert isinstance(arg, int)
            buffer.drop(arg)
            del model[:arg]
        elif op == "read":
            assert isinstance(arg, int)
            assert buffer.read(arg) == bytes(model[arg:])
            assert buffer.read(0, arg) == bytes(model[:arg])
        else:
            buffer.clear()
            model.clear()
        assert len(buffer) == len(model)
    assert buffer.read() == bytes(model)
