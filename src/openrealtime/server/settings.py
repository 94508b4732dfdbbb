"""Server settings: one frozen object, read from flags and ``OPENREALTIME_*``.

Everything a running server needs to know is in :class:`Settings`, so the
app factory (:func:`openrealtime.server.app.create_app`) takes one argument
and the CLI, the environment and tests all build the same object.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openrealtime.codec import Decoder
from openrealtime.config import Defaults, default_config
from openrealtime.exceptions import ProtocolError
from openrealtime.models.session import RealtimeSessionUpdate
from openrealtime.server import pipeline, voice_limits
from openrealtime.server.pipeline import Pipeline
from openrealtime.session import Limits
from openrealtime.turns import FrameScorer


if TYPE_CHECKING:
    from openrealtime.responders.base import Responder
    from openrealtime.server.connection import Transcriber
    from openrealtime.server.secrets import SecretStore


__all__ = [
    "ConfigurationError",
    "REALTIME_MODELS",
    "Settings",
    "echo_responder",
    "load_defaults",
]

#: The model ids of ``RealtimeSessionCreateRequestGA.model`` in the spec.
REALTIME_MODELS: tuple[str, ...] = (
    "gpt-realtime",
    "gpt-realtime-1.5",
    "gpt-realtime-2",
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
    "gpt-realtime-2025-08-28",
    "gpt-4o-realtime-preview",
    "gpt-4o-realtime-preview-2024-10-01",
    "gpt-4o-realtime-preview-2024-12-17",
    "gpt-4o-realtime-preview-2025-06-03",
    "gpt-4o-mini-realtime-preview",
    "gpt-4o-mini-realtime-preview-2024-12-17",
    "gpt-realtime-mini",
    "gpt-realtime-mini-2025-10-06",
    "gpt-realtime-mini-2025-12-15",
    "gpt-audio-1.5",
    "gpt-audio-mini",
    "gpt-audio-mini-2025-10-06",
    "gpt-audio-mini-2025-12-15",
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

_defaults_decoder: Decoder[RealtimeSessionUpdate] = Decoder(
    RealtimeSessionUpdate, root="session"
)


class ConfigurationError(ValueError):
    """The operator's configuration is invalid; the message says where and why."""


def echo_responder() -> Responder:
    """The default responder factory: an ``EchoResponder``."""
    from openrealtime.responders.echo import EchoResponder

    return EchoResponder()


def load_defaults(path: str | os.PathLike[str]) -> Defaults:
    """Read operator defaults: a JSON partial realtime ``session`` update.

    The file holds what a client would put under ``session`` in a
    ``session.update`` (``"type": "realtime"`` may be left out), for example
    ``{"instructions": "Be brief.", "audio": {"output": {"voice": "marin"}}}``.
    It is checked with the same rules as a ``session.update``, so a mistake
    fails at start-up with the hosted API's message.

    Raises:
        ConfigurationError: the file cannot be read or is not a valid update.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read defaults file {path}: {exc}") from None
    try:
        update = _defaults_decoder.decode(data)
        defaults = Defaults(realtime=update)
        # Semantic rules (modalities, turn detection variants) run on merge.
        default_config(
            "realtime",
            id="sess_check",
            model="gpt-realtime",
            created_at=0,
            defaults=defaults,
        )
    except ProtocolError as exc:
        where = f" (at {exc.param})" if exc.param else ""
        raise ConfigurationError(
            f"invalid defaults file {path}{where}: {exc.message}"
        ) from None
    return defaults


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {value!r}")


def _int(name: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, not {number}")
    return number


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the server is configured with.

    Attributes:
        host: interface to listen on.
        port: TCP port.
        api_keys: accepted API keys; empty turns authentication off (ephemeral
            ``ek_`` keys are still checked: WIRE_RULES §7).
        allowed_models: models a client may name in ``?model=``: the spec's
            model ids plus the operator's; ``"*"`` allows any.
        defaults: what new sessions start from (operator overrides of the
            hosted defaults, session length).
        limits: per-session limits of the engine.
        max_frame_bytes: largest client frame; a larger one is answered with
            an error and close code 1009. The hosted API accepts 15 MiB of
            audio in one append.
        ping_interval: seconds between keepalive pings ("a PING every
            ~20.3 s", WIRE_RULES §7); ``None`` turns them off.
        log_level: level of the ``openrealtime`` loggers.
        debug: log every event, with its direction (``<`` in, ``>`` out).
        responder: makes the responder of each connection.
        transcriber: recognizes user audio for input audio transcription
            (``None``: transcription fails with a clear message).
        workers: uvicorn worker processes (the CLI only).
        inspector: serve the inspector page at ``/inspector`` (each worker
            process shows its own sessions).
        inspector_sessions: sessions the inspector keeps (live, then recent).
        inspector_events: events (and updates) it keeps per session.
        pipeline: the voice pipeline (VAD, transcription, speech, responder by
            name, see :mod:`openrealtime.server.pipeline`); when set, it makes
            ``responder``, ``transcriber`` and ``scorer_factory``.
        redis_url: keep ephemeral keys in this Redis (shared by every worker
            and machine) instead of this process's memory.
        scorer_factory: makes the turn detection scorer of each session for
            an input rate (``None``: the engine's energy detector).
        voice_workers: workers of each group of the process's voice pool
            (turn detection, transcription, synthesis streaming; see
            :mod:`openrealtime.voice.compute`); ``None``: the number of CPUs
            (or ``OPENREALTIME_VOICE_WORKERS``). Only the first server of a
            process sizes it.
        voice_offload: run turn detection and transcription in the voice
            pool, never on the event loop (``False``: on the loop, inline,
            as the engine alone does; for tests and measurements).
        max_transcription_seconds: longer committed audio is not transcribed:
            its transcription fails (``audio_too_long``) at once; ``None``: no cap.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    allowed_models: tuple[str, ...] = REALTIME_MODELS
    defaults: Defaults = field(default_factory=Defaults)
    limits: Limits = field(default_factory=Limits)
    max_frame_bytes: int = 16 * 1024 * 1024
    ping_interval: float | None = 20.0
    log_level: str = "info"
    debug: bool = False
    responder: Callable[[], Responder] = echo_responder
    transcriber: Transcriber | None = None
    workers: int = 1
    inspector: bool = False
    inspector_sessions: int = 50
    inspector_events: int = 1000
    pipeline: Pipeline | None = None
    redis_url: str | None = None
    scorer_factory: Callable[[int], FrameScorer] | None = None
    voice_workers: int | None = None
    voice_offload: bool = True
    max_transcription_seconds: float | None = 120.0

    def __post_init__(self) -> None:
        if self.pipeline is not None:
            # The voice pipeline makes the responder, the recognizer and the
            # turn detection scorer (frozen dataclass: set them once, here).
            object.__setattr__(self, "responder", self.pipeline.responder_factory())
            object.__setattr__(self, "transcriber", self.pipeline.transcriber())
            object.__setattr__(self, "scorer_factory", self.pipeline.scorer_factory())
        if self.log_level.upper() not in logging.getLevelNamesMapping():
            raise ConfigurationError(f"unknown log level {self.log_level!r}")
        if self.max_frame_bytes < 1024:
            raise ConfigurationError("max_frame_bytes must be at least 1024")
        if self.inspector_sessions < 1 or self.inspector_events < 1:
            raise ConfigurationError(
                "inspector_sessions and inspector_events must be at least 1"
            )

    def secret_store(self) -> SecretStore:
        """The ephemeral key store these settings ask for (Redis or memory)."""
        if self.redis_url:
            from openrealtime.server.redis_store import RedisSecretStore

            return RedisSecretStore(self.redis_url)
        from openrealtime.server.secrets import MemorySecretStore

        return MemorySecretStore()

    @property
    def auth_enabled(self) -> bool:
        """Whether API keys are checked (ephemeral keys always are)."""
        return bool(self.api_keys)

    @property
    def transport_max_bytes(self) -> int:
        """The transport's own hard limit on a message (uvicorn ``ws_max_size``).

        It is twice :attr:`max_frame_bytes`, so that a frame a little too
        large still reaches the server, which answers it with an error event
        before closing with 1009; a larger one is refused by the transport
        alone (close 1009, no event).
        """
        return 2 * self.max_frame_bytes

    def model_allowed(self, model: str) -> bool:
        """Whether a client may open a realtime session with this model."""
        return "*" in self.allowed_models or model in self.allowed_models

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> Settings:
        """Build settings from ``OPENREALTIME_*`` variables.

        ``OPENREALTIME_HOST``, ``OPENREALTIME_PORT``, ``OPENREALTIME_API_KEYS``
        (comma-separated), ``OPENREALTIME_ALLOWED_MODELS`` (comma-separated,
        added to the spec's models; ``*`` allows any),
        ``OPENREALTIME_DEFAULTS`` (path to a JSON partial session update),
        ``OPENREALTIME_MAX_FRAME_BYTES``, ``OPENREALTIME_PING_INTERVAL``
        (seconds, ``0`` turns pings off), the voice pipeline's variables
        (:mod:`openrealtime.server.pipeline`), ``OPENREALTIME_LOG_LEVEL``,
        ``OPENREALTIME_DEBUG``, ``OPENREALTIME_REDIS_URL``, ``OPENREALTIME_INSPECTOR``,
        ``OPENREALTIME_INSPECTOR_SESSIONS``, ``OPENREALTIME_INSPECTOR_EVENTS``.
        Keyword arguments override both.

        Raises:
            ConfigurationError: a variable has an invalid value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if host := env.get("OPENREALTIME_HOST"):
            values["host"] = host
        if port := env.get("OPENREALTIME_PORT"):
            values["port"] = _int("OPENREALTIME_PORT", port, 0)
        if keys := env.get("OPENREALTIME_API_KEYS"):
            values["api_keys"] = _list(keys)
        if models := env.get("OPENREALTIME_ALLOWED_MODELS"):
            values["allowed_models"] = REALTIME_MODELS + _list(models)
        if path := env.get("OPENREALTIME_DEFAULTS"):
            values["defaults"] = load_defaults(path)
        if size := env.get("OPENREALTIME_MAX_FRAME_BYTES"):
            values["max_frame_bytes"] = _int("OPENREALTIME_MAX_FRAME_BYTES", size, 1024)
        if interval := env.get("OPENREALTIME_PING_INTERVAL"):
            try:
                seconds = float(interval)
            except ValueError:
                raise ConfigurationError(
                    f"OPENREALTIME_PING_INTERVAL must be a number, not {interval!r}"
                ) from None
            values["ping_interval"] = seconds if seconds > 0 else None
        if level := env.get("OPENREALTIME_LOG_LEVEL"):
            values["log_level"] = level.lower()
        if any(env.get(var) for var in pipeline.ENV_VARS):
            try:
                values["pipeline"] = pipeline.from_env(env)
            except pipeline.PipelineError as exc:
                raise ConfigurationError(str(exc)) from None
        if redis_url := env.get("OPENREALTIME_REDIS_URL"):
            values["redis_url"] = redis_url
        if debug := env.get("OPENREALTIME_DEBUG"):
            values["debug"] = _bool("OPENREALTIME_DEBUG", debug)
        if inspector := env.get("OPENREALTIME_INSPECTOR"):
            values["inspector"] = _bool("OPENREALTIME_INSPECTOR", inspector)
        for name, key in (
            ("OPENREALTIME_INSPECTOR_SESSIONS", "inspector_sessions"),
            ("OPENREALTIME_INSPECTOR_EVENTS", "inspector_events"),
        ):
            if number := env.get(name):
                values[key] = _int(name, number, 1)
        try:
            values.update(voice_limits.from_env(env))
        except voice_limits.VoiceLimitError as exc:
            raise ConfigurationError(str(exc)) from None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
