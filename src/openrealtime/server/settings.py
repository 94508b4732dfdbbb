"""Server settings: one frozen object, read from flags and ``OPENREALTIME_*``.

Everything a running server needs to know is in :class:`Settings`, so the
app factory (:func:`openrealtime.server.app.create_app`) takes one argument
and the CLI, the environment and tests all build the same object.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import ssl
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
    from openrealtime.voice.tts import Synthesizer


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


def _float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {value!r}") from None
    if not number >= 0:
        raise ConfigurationError(f"{name} must be at least 0, not {value}")
    return number


def _seconds(name: str, value: str) -> float:
    number = _float(name, value)
    if not number > 0:
        raise ConfigurationError(f"{name} must be more than 0, not {value}")
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
        inspector_max_bytes: bytes it keeps in all (oldest dropped first).
        inspector_keep_closed: seconds it lists a closed session.
        pipeline: the voice pipeline (VAD, transcription, speech, responder by
            name, see :mod:`openrealtime.server.pipeline`); when set, it makes
            ``responder``, ``transcriber`` and ``scorer_factory``.
        redis_url: keep ephemeral keys in this Redis (shared by every worker
            and machine) instead of this process's memory.
        scorer_factory: makes the turn detection scorer of each session for
            an input rate (``None``: the engine's energy detector).
        voice_workers: workers of each group of the process's voice pool
            (turn detection, transcription, synthesis streaming; see
            :mod:`openrealtime.voice.compute`); ``None``: the CPUs this
            process may run on, its affinity (or
            ``OPENREALTIME_VOICE_WORKERS``). Only the first server of a
            process sizes it.
        voice_offload: run turn detection and transcription in the voice
            pool, never on the event loop (``False``: on the loop, inline,
            as the engine alone does; for tests and measurements).
        max_transcription_seconds: longer committed audio is not transcribed:
            its transcription fails (``audio_too_long``) at once; ``None``: no cap.
        ssl_certfile: serve TLS (``wss://``, ``https://``) with this PEM
            certificate chain (the key too, unless ``ssl_keyfile`` is given).
        ssl_keyfile: the PEM private key of ``ssl_certfile``.
        ssl_keyfile_password: the password of an encrypted ``ssl_keyfile``.
        pace: how fast responders' audio streams, as a multiple of real time
            (``1``: real time, the default, so clients can cancel, truncate
            and barge in; ``0``: as fast as possible). A scripted fixture's
            ``pace`` overrides it.
        max_body_bytes: largest HTTP request body (413 above it), checked
            before the API key (:mod:`openrealtime.server.guard`).
        body_timeout: seconds a request may take to send its body (408).
        shutdown_timeout: seconds a graceful shutdown waits for connections
            (SIGTERM; the CLI only): then the rest are cut.
        allowed_hosts: ``Host`` names answered (:mod:`openrealtime.server.hosts`;
            empty: the bind address' names when authentication is off, any
            when it is on; ``"*"``: any).
        metrics_key: when set, ``GET /metrics`` needs ``Authorization: Bearer``
            with this key.
        auth_max_failures: wrong keys one client address may present within
            ``auth_failure_window`` seconds before it gets 429 / close 3000
            (:mod:`openrealtime.server.throttle`); 0 turns this off.
        auth_failure_window: seconds a wrong key counts.
        synthesizer: the speech engine of ``POST /v1/audio/speech`` (set by
            ``pipeline``; ``None``: that endpoint says none is configured).
        webrtc_hosts: the IP addresses whose host ICE candidates WebRTC calls
            offer (each must be an address of this machine, since the call's
            UDP socket binds to it); empty: every address of the machine but
            127.0.0.1 and ::1 (aioice's choice).
        webrtc_peer_networks: networks (CIDR) whose ICE checks WebRTC calls
            answer, and whose offered candidates they try; empty: any. With
            ``127.0.0.0/8``, a call never sends to a non-loopback address.
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
    inspector_max_bytes: int = 64 * 1024 * 1024
    inspector_keep_closed: float = 3600.0
    pipeline: Pipeline | None = None
    redis_url: str | None = None
    scorer_factory: Callable[[int], FrameScorer] | None = None
    voice_workers: int | None = None
    voice_offload: bool = True
    max_transcription_seconds: float | None = 120.0
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = field(default=None, repr=False)
    pace: float = 1.0
    max_body_bytes: int = 16 * 1024 * 1024
    body_timeout: float = 30.0
    shutdown_timeout: float = 5.0
    allowed_hosts: tuple[str, ...] = ()
    metrics_key: str | None = None
    auth_max_failures: int = 10
    auth_failure_window: float = 60.0
    synthesizer: Synthesizer | None = None
    webrtc_hosts: tuple[str, ...] = ()
    webrtc_peer_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pipeline is not None:
            # The voice pipeline makes the responder, the recognizer and the
            # turn detection scorer (frozen dataclass: set them once, here).
            try:
                object.__setattr__(self, "responder", self.pipeline.responder_factory())
                object.__setattr__(self, "transcriber", self.pipeline.transcriber())
                object.__setattr__(self, "synthesizer", self.pipeline.synthesizer())
            except pipeline.PipelineError as exc:
                raise ConfigurationError(str(exc)) from None
            object.__setattr__(self, "scorer_factory", self.pipeline.scorer_factory())
        if self.log_level.upper() not in logging.getLevelNamesMapping():
            raise ConfigurationError(f"unknown log level {self.log_level!r}")
        if self.max_frame_bytes < 1024:
            raise ConfigurationError("max_frame_bytes must be at least 1024")
        if self.pace < 0:
            raise ConfigurationError(f"pace must be at least 0, not {self.pace}")
        if self.max_body_bytes < 1024:
            raise ConfigurationError("max_body_bytes must be at least 1024")
        if not self.body_timeout > 0:
            raise ConfigurationError("body_timeout must be more than 0 seconds")
        if self.auth_max_failures < 0 or not self.auth_failure_window > 0:
            raise ConfigurationError(
                "auth_max_failures must be at least 0 and auth_failure_window "
                "more than 0 seconds"
            )
        if not self.shutdown_timeout > 0:
            raise ConfigurationError("shutdown_timeout must be more than 0 seconds")
        for address in self.webrtc_hosts:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigurationError(
                    f"a WebRTC host must be an IP address, not {address!r}"
                ) from None
        for network in self.webrtc_peer_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigurationError(
                    f"a WebRTC peer network must be an IP network, not {network!r}"
                ) from None
        if self.inspector_sessions < 1 or self.inspector_events < 1:
            raise ConfigurationError(
                "inspector_sessions and inspector_events must be at least 1"
            )
        if self.ssl_certfile is None and (
            self.ssl_keyfile is not None or self.ssl_keyfile_password is not None
        ):
            raise ConfigurationError(
                "--ssl-keyfile and --ssl-keyfile-password need --ssl-certfile"
            )

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS (``wss://`` and ``https://``)."""
        return self.ssl_certfile is not None

    def ssl_options(self) -> dict[str, str]:
        """uvicorn's TLS arguments (``ssl_certfile`` ...), checked first.

        The certificate and key are loaded once here, so that a wrong path,
        a key that does not match or a wrong password fails at start-up with
        one line instead of a traceback from inside uvicorn.

        Raises:
            ConfigurationError: the certificate or key cannot be loaded.
        """
        if self.ssl_certfile is None:
            return {}
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                self.ssl_certfile, self.ssl_keyfile, self.ssl_keyfile_password
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the TLS certificate {self.ssl_certfile}"
                + (f" with key {self.ssl_keyfile}" if self.ssl_keyfile else "")
                + f": {exc}"
            ) from None
        options = {"ssl_certfile": self.ssl_certfile}
        if self.ssl_keyfile is not None:
            options["ssl_keyfile"] = self.ssl_keyfile
        if self.ssl_keyfile_password is not None:
            options["ssl_keyfile_password"] = self.ssl_keyfile_password
        return options

    @property
    def peer_networks(
        self,
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """:attr:`webrtc_peer_networks`, parsed."""
        return tuple(
            ipaddress.ip_network(n, strict=False) for n in self.webrtc_peer_networks
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
        ``OPENREALTIME_INSPECTOR_SESSIONS``, ``OPENREALTIME_INSPECTOR_EVENTS``,
        ``OPENREALTIME_SSL_CERTFILE``, ``OPENREALTIME_SSL_KEYFILE``,
        ``OPENREALTIME_SSL_KEYFILE_PASSWORD``,
        ``OPENREALTIME_PACE`` (multiple of real time), and the limits that
        ``rate_limits.updated`` reports, ``OPENREALTIME_RATE_LIMIT_REQUESTS``
        and ``OPENREALTIME_RATE_LIMIT_TOKENS`` (per minute).
        ``OPENREALTIME_MAX_BODY_BYTES``, ``OPENREALTIME_BODY_TIMEOUT`` (seconds),
        ``OPENREALTIME_SHUTDOWN_TIMEOUT`` (seconds),
        ``OPENREALTIME_INSPECTOR_MAX_BYTES``, ``OPENREALTIME_INSPECTOR_KEEP_CLOSED``,
        ``OPENREALTIME_ALLOWED_HOSTS`` (comma-separated), ``OPENREALTIME_METRICS_KEY``,
        ``OPENREALTIME_AUTH_MAX_FAILURES``, ``OPENREALTIME_WEBRTC_HOSTS``
        and ``OPENREALTIME_WEBRTC_PEER_NETWORKS`` (comma-separated).
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
            ("OPENREALTIME_INSPECTOR_MAX_BYTES", "inspector_max_bytes"),
        ):
            if number := env.get(name):
                values[key] = _int(name, number, 1)
        for name, key in (
            ("OPENREALTIME_SSL_CERTFILE", "ssl_certfile"),
            ("OPENREALTIME_SSL_KEYFILE", "ssl_keyfile"),
            ("OPENREALTIME_SSL_KEYFILE_PASSWORD", "ssl_keyfile_password"),
        ):
            if text := env.get(name):
                values[key] = text
        if pace := env.get("OPENREALTIME_PACE"):
            values["pace"] = _float("OPENREALTIME_PACE", pace)
        rate_limits: dict[str, int] = {}
        for name, key in (
            ("OPENREALTIME_RATE_LIMIT_REQUESTS", "rate_limit_requests"),
            ("OPENREALTIME_RATE_LIMIT_TOKENS", "rate_limit_tokens"),
        ):
            if number := env.get(name):
                rate_limits[key] = _int(name, number, 0)
        if rate_limits:
            # Over the limits given as an argument, if any.
            base = overrides.pop("limits", None)
            values["limits"] = dataclasses.replace(
                base if isinstance(base, Limits) else Limits(), **rate_limits
            )
        if size := env.get("OPENREALTIME_MAX_BODY_BYTES"):
            values["max_body_bytes"] = _int("OPENREALTIME_MAX_BODY_BYTES", size, 1024)
        if timeout := env.get("OPENREALTIME_BODY_TIMEOUT"):
            values["body_timeout"] = _seconds("OPENREALTIME_BODY_TIMEOUT", timeout)
        if keep := env.get("OPENREALTIME_INSPECTOR_KEEP_CLOSED"):
            values["inspector_keep_closed"] = _seconds(
                "OPENREALTIME_INSPECTOR_KEEP_CLOSED", keep
            )
        if hosts := env.get("OPENREALTIME_ALLOWED_HOSTS"):
            values["allowed_hosts"] = _list(hosts)
        if failures := env.get("OPENREALTIME_AUTH_MAX_FAILURES"):
            values["auth_max_failures"] = _int(
                "OPENREALTIME_AUTH_MAX_FAILURES", failures, 0
            )
        if metrics_key := env.get("OPENREALTIME_METRICS_KEY"):
            values["metrics_key"] = metrics_key
        if shutdown := env.get("OPENREALTIME_SHUTDOWN_TIMEOUT"):
            values["shutdown_timeout"] = _seconds(
                "OPENREALTIME_SHUTDOWN_TIMEOUT", shutdown
            )
        if webrtc_hosts := env.get("OPENREALTIME_WEBRTC_HOSTS"):
            values["webrtc_hosts"] = _list(webrtc_hosts)
        if peers := env.get("OPENREALTIME_WEBRTC_PEER_NETWORKS"):
            values["webrtc_peer_networks"] = _list(peers)
        base = values.get("limits")
        try:
            voice = voice_limits.from_env(
                env, base if isinstance(base, Limits) else Limits()
            )
        except voice_limits.VoiceLimitError as exc:
            raise ConfigurationError(str(exc)) from None
        if "limits" in overrides:  # the caller's (the CLI's flags) win
            voice.pop("limits", None)
        values.update(voice)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
