"""Check client events offline, with the hosted API's own errors.

``openrealtime validate FILE`` reads client events (JSON lines, one JSON
array, or a transcript written by ``openrealtime record``, whose client events
are checked) and reports each bad one as the hosted API would: the same
``code``, ``param`` and ``message`` the server sends in its ``error`` event.
Decoding uses the server's decoder; ``session.update`` semantics (merge rules,
turn-detection variants, modalities) and the audio of
``input_audio_buffer.append`` and ``conversation.item.create`` (base64, whole
samples) use the real engine, a :class:`~openrealtime.session.Session` with a
fixed clock.

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
from typing import Any, NamedTuple

import msgspec

from openrealtime.codec import decode_client_event, encode
from openrealtime.config import Defaults, SessionKind
from openrealtime.exceptions import InvalidRequestError, ProtocolError
from openrealtime.ids import CountingIds
from openrealtime.models.base import UNSET
from openrealtime.models.client_events import (
    ConversationItemCreateEvent,
    InputAudioBufferAppendEvent,
    SessionUpdateEvent,
)
from openrealtime.models.session import RealtimeSessionUpdate, SessionConfig
from openrealtime.session import Session
from openrealtime.state import ACCEPTED, not_accepted


__all__ = ["Frame", "Problem", "Validation", "read_events", "read_frames", "validate"]

#: The clock of the sessions validate runs (any fixed time will do).
NOW = 1_760_000_000.0


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad event: where it starts in the input, and the hosted error."""

    line: int
    error: ProtocolError
    #: Its place in a JSON array input, counted from 1 (``None``: not an array).
    element: int | None = None

    def __str__(self) -> str:
        code = self.error.code or self.error.type
        param = f" {self.error.param}" if self.error.param else ""
        where = f"line {self.line}"
        if self.element is not None:
            where = f"element {self.element} ({where})"
        return f"{where}: {code}{param}: {self.error.message}"


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

    def summary(self) -> str:
        """``N events checked, M invalid``."""
        noun = "event" if self.events == 1 else "events"
        return f"{self.events} {noun} checked, {len(self.problems)} invalid"

    def config_json(self) -> dict[str, Any] | None:
        """The final config as JSON (what ``session.updated`` would carry)."""
        if self.config is None:
            return None
        result: dict[str, Any] = json.loads(encode(self.config))
        return result


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class Frame(NamedTuple):
    """One client event of the input, as its source text."""

    line: int
    text: str
    #: Its place in a JSON array, counted from 1 (``None`` for other inputs).
    element: int | None = None


def read_frames(text: str) -> Iterator[tuple[int, str]]:
    """Split input into frames: ``(line, frame)`` pairs (see :func:`read_events`)."""
    for frame in read_events(text):
        yield frame.line, frame.text


def _is_transcript(text: str) -> bool:
    """Whether JSON lines are a ``record`` transcript (``meta`` / ``dir`` lines)."""
    for line in text.splitlines():
        if line.strip():
            try:
                first = json.loads(line)
            except ValueError:
                return False
            return isinstance(first, dict) and ("meta" in first or "dir" in first)
    return False


def _transcript_events(text: str) -> Iterator[Frame]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            yield Frame(number, line)  # reported as the hosted invalid_json
            continue
        if not isinstance(record, dict) or record.get("dir") != "client":
            continue  # meta and server lines
        if isinstance(record.get("event"), dict):
            yield Frame(number, json.dumps(record["event"]))
        elif isinstance(record.get("text"), str):
            yield Frame(number, record["text"])  # a text frame that was not JSON


def read_events(text: str) -> Iterator[Frame]:
    """Split input into the client events to check.

    Input is JSON lines (one event a line; blank lines are skipped), one JSON
    array of events, recognized by its leading ``[``, or a ``record``
    transcript (JSON lines of ``{"meta": ...}`` and ``{"dir": ..., "event":
    ...}``), of which the client events are returned. Array items are returned
    as their exact source text, with the line they start on and their place
    in the array. A broken array yields its tail as one frame at the line of
    the breakage, so it is reported as the hosted ``invalid_json``.
    """
    stripped = text.lstrip()
    if not stripped.startswith("["):
        if _is_transcript(text):
            yield from _transcript_events(text)
            return
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield Frame(number, line)
        return
    decoder = json.JSONDecoder()
    pos = len(text) - len(stripped) + 1
    expect_item = True
    element = 1
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            yield Frame(_line_of(text, pos), text[pos:] or "[", element)
            return
        if text[pos] == "]":
            return
        if not expect_item:
            if text[pos] != ",":
                yield Frame(_line_of(text, pos), text[pos:], element)
                return
            pos += 1
            expect_item = True
            continue
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield Frame(_line_of(text, exc.pos), text[pos:], element)
            return
        yield Frame(_line_of(text, pos), text[pos:end], element)
        element += 1
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
    for line, frame, element in read_events(text):
        count += 1
        try:
            event = decode_client_event(frame)
        except ProtocolError as exc:
            problems.append(Problem(line, exc, element))
            continue
        tag = str(event.__struct_config__.tag)
        if carried is not None and tag not in ACCEPTED[carried.kind]:
            refused = not_accepted(tag, carried.kind)
            refused.event_id = (
                event.event_id if isinstance(event.event_id, str) else None
            )
            problems.append(Problem(line, refused, element))
            continue
        target: Session
        if isinstance(event, SessionUpdateEvent):
            if carried is not None:
                target = carried
            else:
                own: SessionKind = (
                    "realtime"
                    if isinstance(event.session, RealtimeSessionUpdate)
                    else "transcription"
                )
                target = _new_session(kind or own, model, defaults)
        elif isinstance(event, InputAudioBufferAppendEvent):
            # Base64 and whole samples of the session's input format, checked
            # as the server does (the carried session buffers it, as on the wire).
            target = carried or _new_session(kind or "realtime", model, defaults)
        elif isinstance(event, ConversationItemCreateEvent):
            # The item on its own (its audio is base64, its parts fit its
            # role): previous_item_id names items this check has not seen.
            event = msgspec.structs.replace(event, previous_item_id=UNSET)
            target = _new_session("realtime", model, defaults)
        else:
            continue
        target.receive_event(event, NOW)
        error = _error_of(target)
        if error is not None:
            problems.append(Problem(line, error, element))
    config = carried.config if carried is not None else None
    return Validation(problems, count, config)
