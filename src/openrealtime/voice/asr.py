"""Offline speech recognition behind a small streaming interface.

:class:`Transcriber` is what the engine calls for input audio
transcription: it yields text deltas whose concatenation is the final
transcript. :class:`PocketSphinxTranscriber` runs CMU PocketSphinx with the
US English acoustic model, language model and dictionary that ship inside
the ``pocketsphinx`` wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from openrealtime import audio
from openrealtime.models import LogProb
from openrealtime.voice.compute import checkpoint


__all__ = [
    "PocketSphinxTranscriber",
    "TokenUsage",
    "Transcriber",
    "TranscriptDelta",
    "UnsupportedLanguage",
    "run_transcriber",
    "wants_logprobs",
]


# -70 dBFS: quieter than any microphone's own noise, so nothing was said.
_SILENT_RMS: Final = 10 ** (-70 / 20)
_PAD_MS: Final = 300
_TRIM_RATIO: Final = 10 ** (-40 / 20)
_TRIM_MARGIN_MS: Final = 100


class UnsupportedLanguage(ValueError):
    """The transcriber has no model for the requested language.

    Attributes:
        language: The language code that was asked for.
    """

    def __init__(self, language: str, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"language {language!r} is not supported; supported: "
            + ", ".join(supported)
        )
        self.language = language


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What a transcript has cost so far, in the engine's own tokens.

    Attributes:
        audio_tokens: Input positions that carry the audio.
        text_tokens: Input text tokens (the prompt).
        output_tokens: Text tokens the engine generated.
    """

    audio_tokens: int
    text_tokens: int
    output_tokens: int


class TranscriptDelta(str):
    """A text delta that also carries what the engine knows about it.

    It *is* the delta's text (a ``str``), so code that only joins deltas
    keeps working; an engine that has more to say yields these instead of
    plain strings (the :class:`Transcriber` protocol is unchanged).

    Attributes:
        logprobs: Log probabilities of the units this delta is made of (the
            engine's tokens or words), or None when the engine gave none.
        usage: Tokens of the whole transcript up to and including this
            delta (the last delta's is the transcript's), or None.
    """

    logprobs: tuple[LogProb, ...] | None
    usage: TokenUsage | None

    def __new__(
        cls,
        text: str,
        *,
        logprobs: Sequence[LogProb] | None = None,
        usage: TokenUsage | None = None,
    ) -> TranscriptDelta:
        self = super().__new__(cls, text)
        self.logprobs = None if logprobs is None else tuple(logprobs)
        self.usage = usage
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent between processes by the voice pool, with its attributes.
        return (_delta, (str(self), self.logprobs, self.usage))


def _delta(
    text: str, logprobs: tuple[LogProb, ...] | None, usage: TokenUsage | None
) -> TranscriptDelta:
    return TranscriptDelta(text, logprobs=logprobs, usage=usage)


def wants_logprobs(transcriber: object) -> bool:
    """Whether ``transcriber.transcribe`` takes ``logprobs=True``.

    Engines that can give log probabilities say so with a true
    ``gives_logprobs`` attribute and accept a ``logprobs`` keyword (off by
    default, since computing them may cost time); others are called as the
    :class:`Transcriber` protocol says.
    """
    return bool(getattr(transcriber, "gives_logprobs", False))


def run_transcriber(
    transcriber: Any,
    pcm16: bytes,
    rate: int,
    *,
    language: str | None,
    prompt: str | None,
    logprobs: bool = False,
) -> Iterator[str]:
    """Call ``transcriber.transcribe``, asking for log probabilities only
    when wanted and the engine gives them (:func:`wants_logprobs`)."""
    if logprobs and wants_logprobs(transcriber):
        deltas: Iterator[str] = transcriber.transcribe(
            pcm16, rate, language=language, prompt=prompt, logprobs=True
        )
    else:
        deltas = transcriber.transcribe(pcm16, rate, language=language, prompt=prompt)
    return iter(deltas)


@runtime_checkable
class Transcriber(Protocol):
    """Turns one utterance of PCM16 audio into text."""

    def transcribe(
        self, pcm16: bytes, rate: int, *, language: str | None, prompt: str | None
    ) -> Iterator[str]:
        """Yield text deltas for an utterance.

        Args:
            pcm16: PCM16 little-endian mono audio.
            rate: Its sample rate in Hz.
            language: ISO-639-1 code (e.g. ``"en"``) or None for the default.
            prompt: Free-text hint about the content; may be ignored.

        Returns:
            An iterator of deltas; their concatenation is the transcript.

        Raises:
            UnsupportedLanguage: If ``language`` is not supported.
        """
        ...


class PocketSphinxTranscriber:
    """English speech recognition with CMU PocketSphinx.

    Audio is resampled to 16 kHz and decoded as one utterance; the words
    are then yielded one delta each (``"hello"``, ``" world"``). Deltas come
    after the decode rather than during it because PocketSphinx's partial
    hypotheses are revised as audio arrives, and a delta cannot be taken
    back.

    ``language`` must be None or English (``"en"``, ``"en-US"``, ...): the
    wheel carries only a US English model. ``prompt`` is ignored:
    PocketSphinx can spot keyphrases or switch grammars, but both replace
    the language model instead of biasing it, which would hurt everything
    the prompt does not mention.

    Before decoding, silence around the speech is trimmed to 100 ms (10 ms
    frames more than 40 dB below the loudest one), then 300 ms of silence
    goes on each side with faint fixed-seed dither: PocketSphinx needs a
    little non-speech to settle its noise and cepstral-mean estimates, but
    long silences and digital zeros (log of zero energy) throw them off.
    On synthetic speech this turns many misrecognitions into correct
    transcripts. Audio below -70 dBFS gives no text at all instead of a
    hallucinated word. Each call starts from the
    model's initial cepstral mean, so a transcript does not depend on what
    was transcribed before.

    The utterance is decoded in one call (PocketSphinx's full-utterance
    mode, which recognizes better than feeding it pieces); before it, the
    decode calls :func:`~openrealtime.voice.compute.checkpoint`, so a job of
    the voice pool whose session ended does not start. One that is already
    decoding is stopped by the pool, which ends its worker process.

    Building one loads the model (about 0.4 s); reuse the instance. It may
    be shared by threads: each concurrent call takes a decoder of its own
    (made on demand, then kept), so calls never wait for each other. Sent to
    a worker process (pickled), it becomes that process's own instance.

    Raises:
        ImportError: If ``pocketsphinx`` is not installed.
    """

    #: Rate the bundled acoustic model was trained at.
    rate: int = 16000
    #: Language codes accepted (compared on the primary subtag).
    languages: tuple[str, ...] = ("en",)

    def __init__(self) -> None:
        from pocketsphinx import Decoder  # type: ignore[import-untyped]

        self._decoder_class = Decoder
        decoder = self._new_decoder()
        self._cmn0 = decoder.get_cmn(False)
        self._lock = threading.Lock()
        self._decoders: list[Any] = [decoder]

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # A decoder cannot be pickled; a worker process makes its own
        # instance once and reuses it for every job.
        return (_process_instance, ())

    def _new_decoder(self) -> Any:
        return self._decoder_class(samprate=self.rate, loglevel="FATAL")

    def check_language(self, language: str | None) -> None:
        """Raise unless ``language`` is None or one this model handles.

        Args:
            language: An ISO-639-1 code, optionally with a region.

        Raises:
            UnsupportedLanguage: If the model cannot transcribe it.
        """
        if language is None:
            return
        primary = language.replace("_", "-").split("-", 1)[0].strip().lower()
        if primary not in self.languages:
            raise UnsupportedLanguage(language, self.languages)

    def transcribe(
        self, pcm16: bytes, rate: int, *, language: str | None, prompt: str | None
    ) -> Iterator[str]:
        """Yield the words of an utterance as text deltas.

        The language is checked at once, so the error comes from this call;
        decoding starts when the iterator is first advanced.

        Args:
            pcm16: PCM16 little-endian mono audio.
            rate: Its sample rate in Hz.
            language: None or an English code.
            prompt: Ignored (see the class notes).

        Returns:
            An iterator of deltas; their concatenation is the transcript.

        Raises:
            UnsupportedLanguage: If ``language`` is not English.
        """
        self.check_language(language)
        del prompt
        return self._deltas(pcm16, rate)

    def _deltas(self, pcm16: bytes, rate: int) -> Iterator[str]:
        text = self._decode(audio.resample(pcm16, rate, self.rate))
        for i, word in enumerate(text.split()):
            yield word if i == 0 else " " + word

    def _decode(self, pcm16k: bytes) -> str:
        speech = _trim(np.frombuffer(pcm16k, dtype="<i2"), self.rate)
        if speech.size == 0:
            return ""
        pad = np.zeros(self.rate * _PAD_MS // 1000, dtype=np.float64)
        x = np.concatenate([pad, speech, pad])
        # Triangular dither of +-1 LSB; a fixed seed keeps output repeatable.
        rng = np.random.default_rng(0)
        x = x + rng.uniform(-1, 1, x.size) + rng.uniform(-1, 1, x.size)
        pcm = np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()
        with self._lock:
            decoder = self._decoders.pop() if self._decoders else None
        if decoder is None:
            decoder = self._new_decoder()
        # One call on the whole utterance: PocketSphinx's full-utterance
        # mode recognizes better than feeding it pieces. A decode that fails
        # drops its decoder rather than putting it back.
        checkpoint()
        decoder.set_cmn(self._cmn0)
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        with self._lock:
            self._decoders.append(decoder)
        # No hypothesis at all comes as None; filler tokens (<sil>, [noise])
        # are not words of the transcript.
        hypstr = "" if hyp is None else str(hyp.hypstr)
        words = [w for w in hypstr.split() if w[:1] not in "<["]
        return " ".join(words)


def _trim(x: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
    # Long silences around the speech skew PocketSphinx's per-utterance
    # cepstral mean and wreck recognition, so keep only the loud span (10 ms
    # frames within 40 dB of the loudest, above -70 dBFS) plus a margin.
    hop = rate // 100
    n = x.size // hop
    if n == 0:
        return x[:0]
    frames = x[: n * hop].astype(np.float64).reshape(n, hop)
    level = np.sqrt(np.mean(frames * frames, axis=1)) / 32768.0
    floor = max(_SILENT_RMS, float(level.max()) * _TRIM_RATIO)
    loud = np.flatnonzero(level >= floor)
    if loud.size == 0:
        return x[:0]
    margin = _TRIM_MARGIN_MS * rate // 1000
    start = max(int(loud[0]) * hop - margin, 0)
    end = min((int(loud[-1]) + 1) * hop + margin, x.size)
    return x[start:end]


_instance: PocketSphinxTranscriber | None = None
_instance_lock = threading.Lock()


def _process_instance() -> PocketSphinxTranscriber:
    """This process's PocketSphinx (what a pickled transcriber becomes)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = PocketSphinxTranscriber()
        return _instance
