"""The ``validate``, ``record`` and ``replay`` subcommands of ``openrealtime``.

:func:`add_commands` registers them on the CLI's sub-parsers; each handler
takes the parsed arguments and returns an exit code, like ``serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from openrealtime.server.settings import ConfigurationError, load_defaults


__all__ = ["add_commands", "parse_listen"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``validate``, ``record`` and ``replay`` to the CLI."""
    validate = commands.add_parser(
        "validate",
        help="check client events offline, with the hosted API's errors",
        description="Read client events (JSON lines, one JSON array, or a "
        "transcript written by 'openrealtime record') and print each bad one as "
        "'line N: code param: message' ('element I (line N)' in an array, counted "
        "from 1), the hosted API's error, then 'N events checked, M invalid'. "
        "Exit status 1 if any is bad. With --session, also apply the "
        "session.updates in order and print the final effective config as JSON "
        "on standard output (the errors then go to standard error).",
    )
    validate.add_argument("file", metavar="FILE", help="events file, or - for stdin")
    validate.add_argument(
        "--session",
        action="store_true",
        help="apply the session.updates to one session and print its config",
    )
    validate.add_argument(
        "--kind",
        choices=["realtime", "transcription"],
        help="session kind (default: realtime with --session, else each "
        "update's session.type)",
    )
    validate.add_argument(
        "--model", default="gpt-realtime", help="model (default gpt-realtime)"
    )
    validate.add_argument(
        "--defaults",
        metavar="FILE",
        help="operator defaults the session starts from (as for serve)",
    )
    validate.set_defaults(run=_validate)

    record = commands.add_parser(
        "record",
        help="relay sessions to a server and write transcripts",
        description="Listen locally and relay each client connection to URL "
        "(query string, Authorization and subprotocols passed on), writing "
        "every frame both ways as normalized JSON lines.",
    )
    record.add_argument(
        "url", metavar="URL", help="upstream, e.g. ws://127.0.0.1:8000/v1/realtime"
    )
    record.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="transcript of the first session (later ones: FILE.2.jsonl, ...)",
    )
    record.add_argument(
        "--listen",
        default="127.0.0.1:8765",
        metavar="HOST:PORT",
        help="where clients connect (default 127.0.0.1:8765; port 0: any)",
    )
    record.add_argument(
        "--once", action="store_true", help="exit after the first session ends"
    )
    record.set_defaults(run=_record)

    replay = commands.add_parser(
        "replay",
        help="replay transcripts against a server and report differences",
        description="Send each transcript's client events to URL, waiting for "
        "the recorded server events after each, and print what differs "
        "(missing, extra and changed events, path by path). Exit status 1 on "
        "any difference.",
    )
    replay.add_argument("transcripts", nargs="+", metavar="TRANSCRIPT")
    replay.add_argument(
        "--against",
        required=True,
        metavar="URL",
        help="server URL, e.g. ws://127.0.0.1:8000/v1/realtime (the "
        "transcript's query string is added when URL has none)",
    )
    replay.add_argument(
        "--api-key",
        default=os.environ.get("OPENAI_API_KEY"),
        help="sent as Authorization: Bearer (default $OPENAI_API_KEY)",
    )
    replay.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="longest wait for each expected server event (default 10)",
    )
    replay.set_defaults(run=_replay)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, ``PORT``) as a pair.

    Raises:
        ConfigurationError: not a host and port.
    """
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ConfigurationError(f"--listen must be HOST:PORT, not {value!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigurationError(f"--listen port out of range: {number}")
    return host.strip("[]") or "127.0.0.1", number


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None


def _validate(args: argparse.Namespace) -> int:
    from openrealtime.tools.validate import validate

    defaults = load_defaults(args.defaults) if args.defaults else None
    result = validate(
        _read(args.file),
        session=args.session,
        kind=args.kind,
        model=args.model,
        defaults=defaults,
    )
    report = sys.stderr if args.session else sys.stdout
    for problem in result.problems:
        print(problem, file=report)
    print(result.summary(), file=report)
    if args.session:
        print(json.dumps(result.config_json(), indent=2))
    return 0 if result.ok else 1


def _record(args: argparse.Namespace) -> int:
    from openrealtime.tools.record import Recorder

    host, port = parse_listen(args.listen)
    recorder = Recorder(args.url, Path(args.output), once=args.once)
    asyncio.run(recorder.run(host, port))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from websockets.exceptions import WebSocketException

    from openrealtime.tools.replay import format_report, load_transcript, replay

    failed = False
    for path in args.transcripts:
        try:
            transcript = load_transcript(path)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read transcript {path}: {exc}") from None
        try:
            report = asyncio.run(
                replay(
                    transcript, args.against, api_key=args.api_key, timeout=args.timeout
                )
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            print(f"{path}: cannot connect to {args.against}: {exc}", file=sys.stderr)
            return 2
        print(format_report(report))
        failed = failed or not report.ok
    return 1 if failed else 0
