"""The ``openrealtime`` command.

::

    openrealtime serve [--host H] [--port P] [--api-key K ...] [--debug] ...
    openrealtime validate FILE|- [--session]
    openrealtime record URL -o transcript.jsonl [--listen HOST:PORT]
    openrealtime replay transcript.jsonl --against URL
    openrealtime [--version]               # alone: the help

Each subcommand is a function that takes the parsed arguments and returns an
exit code; :func:`build_parser` registers them, so a new one is a new
``add_parser`` call and a new function. Flags override ``OPENREALTIME_*``
variables, which override the built-in defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import logging
import logging.config
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openrealtime import __version__
from openrealtime.server import inspector, pipeline, voice_limits
from openrealtime.server.settings import (
    REALTIME_MODELS,
    ConfigurationError,
    Settings,
    load_defaults,
)
from openrealtime.session import Limits
from openrealtime.tools.commands import add_commands as add_tool_commands


__all__ = [
    "DRIVERS",
    "SCHEDULING",
    "apply_scheduling",
    "build_parser",
    "build_settings",
    "check_port",
    "main",
    "settings_env",
    "startup_lines",
    "voice_workers_per_server",
]

#: Transport drivers of ``serve``, the default first.
DRIVERS = ("picows", "asgi")
#: The uvicorn HTTP protocol of each driver (an import string: workers too).
_HTTP_PROTOCOLS = {
    "picows": "openrealtime.server.picows_driver:RealtimeProtocol",
    "asgi": "httptools",
}

#: CPU scheduling policies of ``serve`` (Linux), the default first.
SCHEDULING = ("batch", "normal")

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="openrealtime",
        description="An open server for the OpenAI Realtime API (GA).",
    )
    parser.add_argument(
        "--version", action="version", version=f"openrealtime {__version__}"
    )
    # Not required: with no command, main() prints this help instead of an error.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(commands)
    add_tool_commands(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[Any]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Serve WebSocket /v1/realtime and POST "
        "/v1/realtime/client_secrets. Flags override OPENREALTIME_* variables.",
    )
    serve.add_argument("--host", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help="accept this API key (repeatable); none turns authentication off",
    )
    serve.add_argument(
        "--allowed-model",
        dest="allowed_models",
        action="append",
        metavar="MODEL",
        help="also accept this model in ?model= (repeatable; '*' allows any)",
    )
    serve.add_argument(
        "--defaults",
        metavar="FILE",
        help="JSON partial realtime session (as in session.update) that new "
        "sessions start from",
    )
    serve.add_argument(
        "--responder",
        choices=pipeline.RESPONDER_NAMES,
        help="what produces responses (default echo)",
    )
    serve.add_argument(
        "--max-frame-bytes", type=int, metavar="N", help="largest client frame"
    )
    serve.add_argument(
        "--ping-interval",
        type=float,
        metavar="SECONDS",
        help="keepalive ping interval (default 20; 0 turns pings off)",
    )
    serve.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (default info)",
    )
    serve.add_argument(
        "--debug",
        action="store_true",
        default=None,
        help="log every event ('< session.update', '> session.updated')",
    )
    serve.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (default 1)"
    )
    serve.add_argument(
        "--redis-url",
        metavar="URL",
        help="keep ephemeral keys in Redis, shared by every worker and machine "
        "(needs the redis extra)",
    )
    serve.add_argument(
        "--driver",
        choices=DRIVERS,
        help="WebSocket transport: picows (default: /v1/realtime on picows, "
        "REST and the inspector on the ASGI app, one port) or asgi (the "
        "ASGI app alone); also OPENREALTIME_DRIVER",
    )
    serve.add_argument(
        "--scheduling",
        choices=SCHEDULING,
        help="Linux CPU scheduling policy of the server and its voice workers: "
        "batch (default: a busy core is shared by its time slices, not taken "
        "back at every packet) or normal; also OPENREALTIME_SCHEDULING",
    )
    serve.add_argument(
        "--ssl-certfile",
        metavar="FILE",
        help="serve TLS (wss://, https://) with this PEM certificate (chain); "
        "also OPENREALTIME_SSL_CERTFILE",
    )
    serve.add_argument(
        "--ssl-keyfile",
        metavar="FILE",
        help="its PEM private key, unless the certificate file holds it; "
        "also OPENREALTIME_SSL_KEYFILE",
    )
    serve.add_argument(
        "--ssl-keyfile-password",
        metavar="PASSWORD",
        help="the password of an encrypted key file; also "
        "OPENREALTIME_SSL_KEYFILE_PASSWORD",
    )
    serve.add_argument(
        "--pace",
        type=float,
        metavar="N",
        help="stream responders' audio at N times real time (default 1; 0: as "
        "fast as possible)",
    )
    serve.add_argument(
        "--rate-limit-requests",
        type=int,
        metavar="N",
        help="the requests limit rate_limits.updated reports (per minute)",
    )
    serve.add_argument(
        "--rate-limit-tokens",
        type=int,
        metavar="N",
        help="the tokens limit rate_limits.updated reports (per minute)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="N",
        help="largest HTTP request body, checked before the API key "
        "(default 16 MiB; 413 above it)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        metavar="SECONDS",
        help="time a request may take to send its body (default 30; 408 after)",
    )
    serve.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="answer requests for this Host name (repeatable; .example.com for "
        "subdomains too, '*' for any). Default: with authentication off, the "
        "bind address' names; with it on, any",
    )
    serve.add_argument(
        "--auth-max-failures",
        type=int,
        metavar="N",
        help="wrong keys one client address may try per minute before it gets "
        "429 (default 10; 0 turns this off, e.g. behind a proxy)",
    )
    serve.add_argument(
        "--metrics-key",
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on GET /metrics",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="SECONDS",
        help="on SIGTERM, time given to open connections to close before they "
        "are cut (default 5)",
    )
    serve.add_argument(
        "--webrtc-host",
        dest="webrtc_hosts",
        action="append",
        metavar="ADDR",
        help="offer WebRTC calls ICE host candidates on this IP address of the "
        "machine only (repeatable; e.g. 127.0.0.1, or the address clients can "
        "reach). Default: every address but loopback",
    )
    serve.add_argument(
        "--webrtc-peer-network",
        dest="webrtc_peer_networks",
        action="append",
        metavar="CIDR",
        help="answer WebRTC ICE checks only from this network (repeatable; e.g. "
        "127.0.0.0/8 keeps calls on loopback). Default: any",
    )
    pipeline.add_arguments(serve)
    voice_limits.add_arguments(serve)
    inspector.add_arguments(serve)
    serve.set_defaults(run=_serve)


def build_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings of ``serve``: the environment, then the flags over it.

    Raises:
        ConfigurationError: a flag or variable has an invalid value.
    """
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.api_keys:
        overrides["api_keys"] = tuple(args.api_keys)
    if args.allowed_models:
        overrides["allowed_models"] = REALTIME_MODELS + tuple(args.allowed_models)
    if args.defaults is not None:
        overrides["defaults"] = load_defaults(args.defaults)
    if args.max_frame_bytes is not None:
        overrides["max_frame_bytes"] = args.max_frame_bytes
    if args.ping_interval is not None:
        overrides["ping_interval"] = args.ping_interval or None
    if args.log_level is not None:
        overrides["log_level"] = args.log_level
    if args.debug:
        overrides["debug"] = True
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigurationError("--workers must be at least 1")
        overrides["workers"] = args.workers
    if args.redis_url is not None:
        overrides["redis_url"] = args.redis_url
    if args.max_body_bytes is not None:
        overrides["max_body_bytes"] = args.max_body_bytes
    if args.body_timeout is not None:
        overrides["body_timeout"] = args.body_timeout
    if args.shutdown_timeout is not None:
        overrides["shutdown_timeout"] = args.shutdown_timeout
    if args.allowed_hosts:
        overrides["allowed_hosts"] = tuple(args.allowed_hosts)
    if args.metrics_key is not None:
        overrides["metrics_key"] = args.metrics_key
    if args.auth_max_failures is not None:
        overrides["auth_max_failures"] = args.auth_max_failures
    for name in ("ssl_certfile", "ssl_keyfile", "ssl_keyfile_password"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.webrtc_hosts:
        overrides["webrtc_hosts"] = tuple(args.webrtc_hosts)
    if args.webrtc_peer_networks:
        overrides["webrtc_peer_networks"] = tuple(args.webrtc_peer_networks)
    overrides.update(inspector.settings_overrides(args))
    try:
        overrides.update(
            voice_limits.settings_overrides(
                args, os.environ if environ is None else environ, Limits()
            )
        )
    except voice_limits.VoiceLimitError as exc:
        raise ConfigurationError(str(exc)) from None
    try:
        overrides.update(
            pipeline.settings_overrides(
                args, os.environ if environ is None else environ
            )
        )
    except pipeline.PipelineError as exc:
        raise ConfigurationError(str(exc)) from None
    env = dict(os.environ if environ is None else environ)
    env.update(_engine_env(args))
    return Settings.from_env(env, **overrides)


def _engine_env(args: argparse.Namespace) -> dict[str, str]:
    """The pace and rate limit flags, as the variables that carry them."""
    env: dict[str, str] = {}
    for flag, var in (
        ("pace", "OPENREALTIME_PACE"),
        ("rate_limit_requests", "OPENREALTIME_RATE_LIMIT_REQUESTS"),
        ("rate_limit_tokens", "OPENREALTIME_RATE_LIMIT_TOKENS"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            env[var] = str(value)
    return env


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """``OPENREALTIME_*`` variables that carry the flags to worker processes."""
    env: dict[str, str] = {}
    if args.api_keys:
        env["OPENREALTIME_API_KEYS"] = ",".join(args.api_keys)
    if args.allowed_models:
        env["OPENREALTIME_ALLOWED_MODELS"] = ",".join(args.allowed_models)
    if args.defaults is not None:
        env["OPENREALTIME_DEFAULTS"] = os.path.abspath(args.defaults)
    if args.max_frame_bytes is not None:
        env["OPENREALTIME_MAX_FRAME_BYTES"] = str(args.max_frame_bytes)
    if args.ping_interval is not None:
        env["OPENREALTIME_PING_INTERVAL"] = str(args.ping_interval)
    if args.log_level is not None:
        env["OPENREALTIME_LOG_LEVEL"] = args.log_level
    if args.debug:
        env["OPENREALTIME_DEBUG"] = "1"
    if args.redis_url is not None:
        env["OPENREALTIME_REDIS_URL"] = args.redis_url
    if args.max_body_bytes is not None:
        env["OPENREALTIME_MAX_BODY_BYTES"] = str(args.max_body_bytes)
    if args.body_timeout is not None:
        env["OPENREALTIME_BODY_TIMEOUT"] = str(args.body_timeout)
    if args.shutdown_timeout is not None:
        env["OPENREALTIME_SHUTDOWN_TIMEOUT"] = str(args.shutdown_timeout)
    if args.allowed_hosts:
        env["OPENREALTIME_ALLOWED_HOSTS"] = ",".join(args.allowed_hosts)
    if args.metrics_key is not None:
        env["OPENREALTIME_METRICS_KEY"] = args.metrics_key
    if args.auth_max_failures is not None:
        env["OPENREALTIME_AUTH_MAX_FAILURES"] = str(args.auth_max_failures)
    for name in ("ssl_certfile", "ssl_keyfile"):
        if getattr(args, name) is not None:
            env[f"OPENREALTIME_{name.upper()}"] = os.path.abspath(getattr(args, name))
    if args.ssl_keyfile_password is not None:
        env["OPENREALTIME_SSL_KEYFILE_PASSWORD"] = args.ssl_keyfile_password
    if args.webrtc_hosts:
        env["OPENREALTIME_WEBRTC_HOSTS"] = ",".join(args.webrtc_hosts)
    if args.webrtc_peer_networks:
        env["OPENREALTIME_WEBRTC_PEER_NETWORKS"] = ",".join(args.webrtc_peer_networks)
    env.update(inspector.settings_env(args))
    env.update(voice_limits.settings_env(args))
    env.update(pipeline.settings_env(args))
    env.update(_engine_env(args))
    return env


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging config, with the ``openrealtime`` loggers added."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    # No client string (a model, a path) can start a forged log line.
    config.setdefault("filters", {})["safe"] = {
        "()": "openrealtime.server.logsafe.SafeLogFilter"
    }
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("safe")
    level = "DEBUG" if settings.debug else settings.log_level.upper()
    config["loggers"]["openrealtime"] = {
        "handlers": ["default"],
        "level": level,
        "propagate": False,
    }
    return config


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def check_port(host: str, port: int) -> None:
    """Fail early and plainly when ``host:port`` cannot be bound.

    uvicorn binds only after the application has started, so its own error
    comes after "Application startup complete."; this one comes first. The
    socket is bound as asyncio binds it (``SO_REUSEADDR``), then closed.

    Raises:
        ConfigurationError: the port is in use, or the address is not local.
    """
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"port {port} on {host} is already in use (is another server "
                    "running there?); stop it or choose another port with --port"
                ) from None
            raise ConfigurationError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None


def startup_lines(settings: Settings) -> list[str]:
    """What the start-up log says a client should connect to."""
    where = f"{_url_host(settings.host)}:{settings.port}"
    lines = [f"Realtime API: ws://{where}/v1/realtime"]
    if settings.inspector:
        lines.append(f"Inspector: http://{where}/inspector")
    return lines


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from openrealtime.server.app import AUTH_WARNED_ENV, create_app
    from openrealtime.server.lifecycle import MASTER_PID_ENV

    settings = build_settings(args)
    driver = args.driver or os.environ.get("OPENREALTIME_DRIVER") or DRIVERS[0]
    if driver not in DRIVERS:
        raise ConfigurationError(
            f"OPENREALTIME_DRIVER must be one of {', '.join(DRIVERS)}, not {driver!r}"
        )
    options: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        # The fast stack: uvloop; picows for /v1/realtime (the default), and
        # httptools with websockets' Sans-I/O protocol for the ASGI app.
        loop="uvloop",
        http=_HTTP_PROTOCOLS[driver],
        ws="websockets-sansio",
        ws_max_size=settings.transport_max_bytes,
        # No permessage-deflate on either driver (picows has none; uvicorn
        # offers it by default). On the ASGI driver it cost each session that
        # asked for it (websockets' clients, so openai-python's, and browsers
        # do) ~45 KiB of zlib state and 5-30 us of CPU per exchange.
        ws_per_message_deflate=False,
        # §7: "the server sends a PING every ~20.3 s".
        ws_ping_interval=settings.ping_interval,
        log_level=settings.log_level,
        log_config=log_config(settings),
        timeout_graceful_shutdown=settings.shutdown_timeout,
        # TLS (wss://, https://) on both drivers: uvicorn wraps each
        # connection before the driver's protocol sees it.
        **settings.ssl_options(),
    )
    scheduling = (
        args.scheduling or os.environ.get("OPENREALTIME_SCHEDULING") or SCHEDULING[0]
    )
    if scheduling not in SCHEDULING:
        raise ConfigurationError(
            f"OPENREALTIME_SCHEDULING must be one of {', '.join(SCHEDULING)}, "
            f"not {scheduling!r}"
        )
    check_port(settings.host, settings.port)
    logging.config.dictConfig(options["log_config"])
    # Before any thread or process starts: they inherit it.
    apply_scheduling(scheduling)
    if settings.port:  # port 0: uvicorn's own line says which port it got
        for line in startup_lines(settings):
            logging.getLogger("openrealtime.server").info(line)
    if settings.workers > 1:
        # Workers are new processes: they rebuild the settings from the
        # environment, so the flags travel there.
        os.environ.update(settings_env(args))
        if settings.voice_workers is None:
            from openrealtime.voice.compute import usable_cpus

            # The workers share this process's CPUs: together they start one
            # turn detection worker per CPU, not one per CPU each.
            os.environ["OPENREALTIME_VOICE_WORKERS"] = str(
                voice_workers_per_server(usable_cpus(), settings.workers)
            )
        if not settings.auth_enabled:
            logging.getLogger("openrealtime.server").warning(
                "Authentication is off: no API key is configured, so any client "
                "can open sessions. Set --api-key or OPENREALTIME_API_KEYS to "
                "require one."
            )
        os.environ[AUTH_WARNED_ENV] = "1"
        # Workers exit when this process dies, even by SIGKILL.
        os.environ[MASTER_PID_ENV] = str(os.getpid())
        uvicorn.run(
            "openrealtime.server.app:app_from_env",
            factory=True,
            workers=settings.workers,
            # uvicorn replaces a worker that does not answer its health check
            # in 5 s, dropping every session it holds; a worker busy with
            # thousands of them (a full garbage collection on a shared core)
            # can take that long. 30 s still replaces a hung one.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
            **options,
        )
        return 0
    uvicorn.run(create_app(settings, own_process=True), **options)
    return 0


def apply_scheduling(policy: str) -> bool:
    """Put this process's threads under a CPU scheduling policy of
    :data:`SCHEDULING`; the threads and processes they start afterwards
    (the event loop's, the voice workers, uvicorn's workers) inherit it. Returns
    whether it was applied (only Linux has the policies).

    ``batch`` (Linux's ``SCHED_BATCH``) keeps the process's share of the CPU
    and its niceness, and changes one thing: when one of its threads wakes
    up on a busy core, it waits for the running thread's time slice to end
    instead of preempting it at once. On a core shared by the event loop
    and a voice worker, every packet used to wake the loop and interrupt
    the worker: ~2,700 forced switches a second at 200 streaming sessions,
    two fifths of the core spent in the kernel. Batched, the loop takes the
    packets that arrived meanwhile in one go and the worker finishes its
    call (bench/README.md, "Seventh pass"). An idle core runs a waking
    thread at once either way.
    """
    setter = getattr(os, "sched_setscheduler", None)
    if setter is None:  # pragma: no cover - not Linux
        return False
    value = os.SCHED_BATCH if policy == "batch" else os.SCHED_OTHER
    try:
        # The policy is per thread: those already running too (OpenBLAS
        # starts its own when numpy is imported).
        try:
            threads = [int(tid) for tid in os.listdir("/proc/self/task")]
        except OSError:  # pragma: no cover - no /proc
            threads = [0]
        for tid in threads:
            with contextlib.suppress(ProcessLookupError):  # it just ended
                setter(tid, value, os.sched_param(0))
    except OSError:  # pragma: no cover - a seccomp profile that forbids it
        logging.getLogger("openrealtime.server").warning(
            "could not set the %s CPU scheduling policy", policy, exc_info=True
        )
        return False
    return True


def voice_workers_per_server(cpus: int, servers: int) -> int:
    """Voice workers per group for each of ``servers`` processes that share
    ``cpus`` CPUs (``serve --workers``): the CPUs divided among them, rounded
    up, at least one. Each server process has a voice pool of its own; sized
    by the CPUs alone, 16 servers on 16 CPUs started 256 turn detection
    processes (~70 MiB each, Silero's model loaded) for 16 CPUs."""
    return max(1, -(-cpus // max(1, servers)))


#: Seconds a worker process may take to answer uvicorn's health check.
WORKER_HEALTHCHECK_S = 30


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``openrealtime`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    run: Command = args.run
    try:
        return run(args)
    except ConfigurationError as exc:
        print(f"openrealtime: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130
