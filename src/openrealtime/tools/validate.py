"""Check client events offline, with the hosted API's own errors.

``openrealtime validate FILE`` reads client events (JSON lines, or one JSON
array) and reports each bad one as the hosted API would: the same ``code``,
``param`` and ``message`` the server sends in its ``error`` event. Decoding
uses the server's decoder; ``session.update`` semantics (merge rules,
turn-detection variants, modalities) use the real engine, a
:class:`~openrealtime.session.Session` with a fixed clock.

Without ``session=True`` every ``session.update`` is checked against a fresh
default session (of its own ``session.type`` unless ``kind`` is given), so
nothing carries from one update to the next. With it, one session applies the
updates in order (a rejected one changes nothing, as on the wire), events the
session's kind does not accept are reported, and the final effective config is
returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from openrealtime.codec import decode_client_event, encode
from openrealtime.config import Defaults, SessionKind
from openrealtime.exceptions import InvalidRequestError, ProtocolError
from openrealtime.ids import CountingIds
from openrealtime.models.client_events import SessionUpdateEvent
from openrealtime.models.session import RealtimeSessionUpdate, SessionConfig
from openrealtime.session import Session
from openrealtime.state import ACCEPTED, not_accepted


__all__ = ["Problem", "Validation", "read_frames", "validate"]

#: The clock of the sessions validate runs (any fixed time will do).
NOW = 1_760_000_000.0


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad event: where it starts in the input, and the hosted error."""

    line: int
    error: ProtocolError

    def __str__(self) -> str:
        code = self.error.code or self.error.type
        param = f" {self.error.param}" if self.error.param else ""
        return f"line {self.line}: {code}{param}: {self.error.message}"


@dataclass(frozen=True, slots=True)
class Validation:
    """The outcome of :func:`validate`.

    Attributes:
        problems: the bad events, in input order.
        events: how many events were read.
        config: the final effective config (with ``session=True`` only).
    """

    problems: list[Problem]
    events: int
    config: SessionConfig | None = None

    @property
    def ok(self) -> bool:
        """Whether every event is valid."""
        return not self.problems

    def config_json(self) -> dict[str, Any] | None:
        """The final config as JSON (what ``session.updated`` would carry)."""
        if self.config is None:
            return None
        result: dict[str, Any] = json.loads(encode(self.config))
        return result


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read_frames(text: str) -> Iterator[tuple[int, str]]:
    """Split input into frames: ``(line, frame)`` pairs.

    Input is JSON lines (one event a line; blank lines are skipped) or one
    JSON array of events, recognized by its leading ``[``. Array items are
    returned as their exact source text, with the line they start on. A
    broken array yields its tail as one frame at the line of the breakage, so
    it is reported as the hosted ``invalid_json``.
    """
    stripped = text.lstrip()
    if not stripped.startswith("["):
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield number, line
        return
    decoder = json.JSONDecoder()
    pos = len(text) - len(stripped) + 1
    expect_item = True
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            yield _line_of(text, pos), text[pos:] or "["
            return
        if text[pos] == "]":
            return
        if not expect_item:
            if text[pos] != ",":
                yield _line_of(text, pos), text[pos:]
                return
            pos += 1
            expect_item = True
            continue
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield _line_of(text, exc.pos), text[pos:]
            return
        yield _line_of(text, pos), text[pos:end]
        pos = end
        expect_item = False


def _new_session(kind: SessionKind, model: str, defaults: Defaults | None) -> Session:
    session = Session(
        kind=kind, model=model, now=NOW, ids=CountingIds(), defaults=defaults
    )
    session.data_to_send()  # session.created
    return session


def _error_of(session: Session) -> ProtocolError | None:
    for frame in session.data_to_send():
        event = json.loads(frame)
        if event.get("type") == "error":
            error = event["error"]
            return InvalidRequestError(
                error.get("code"),
                error.get("message", ""),
                error.get("param"),
                error.get("event_id"),
            )
    return None


def validate(
    text: str,
    *,
    session: bool = False,
    kind: SessionKind | None = None,
    model: str = "gpt-realtime",
    defaults: Defaults | None = None,
) -> Validation:
    """Validate client events.

    Args:
        text: JSON lines or one JSON array (see :func:`read_frames`).
        session: apply the ``session.update`` events in order to one session
            and return its final config.
        kind: the session kind (default: ``realtime`` with ``session``; the
            update's own ``session.type`` without).
        model: the model the session is opened with.
        defaults: operator defaults the sessions start from.

    Returns:
        The problems found and, with ``session``, the final config.
    """
    problems: list[Problem] = []
    count = 0
    carried = _new_session(kind or "realtime", model, defaults) if session else None
    for line, frame in read_frames(text):
        count += 1
        try:
            event = decode_client_event(frame)
        except ProtocolError as exc:
            problems.append(Problem(line, exc))
            continue
        tag = str(event.__struct_config__.tag)
        if carried is not None:
            if tag not in ACCEPTED[carried.kind]:
                refused = not_accepted(tag, carried.kind)
                refused.event_id = (
                    event.event_id if isinstance(event.event_id, str) else None
                )
                problems.append(Problem(line, refused))
                continue
            target = carried
        elif isinstance(event, SessionUpdateEvent):
            own: SessionKind = (
                "realtime"
                if isinstance(event.session, RealtimeSessionUpdate)
                else "transcription"
            )
            target = _new_session(kind or own, model, defaults)
        else:
            continue
        if isinstance(event, SessionUpdateEvent):
            target.receive_event(event, NOW)
            error = _error_of(target)
            if error is not None:
                problems.append(Problem(line, error))
    config = carried.config if carried is not None else None
    return Validation(problems, count, config)
