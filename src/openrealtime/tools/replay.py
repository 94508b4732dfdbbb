"""Replay a transcript's client side and report what came back differently.

``openrealtime replay transcript.jsonl --against URL`` connects to ``URL``
(with the transcript's query string when ``URL`` has none), sends the
recorded client events in order and, after each, waits for as many server
events as followed it in the transcript (up to ``timeout`` seconds) before
sending the next. What comes back is normalized like the recording
(:mod:`openrealtime.tools.normalize`) and compared, client event by client
event: events are aligned by type, and events of the same type are compared
path by path. Placeholders are aligned too (:class:`IdAligner`): when the live
server sends one event more, its ids number differently (``<event_15>`` where
the recording has ``<event_14>``), which is not a difference; an id that
points at a different object than recorded still is.

:func:`replay_session` does the same against a
:class:`~openrealtime.session.Session` with no I/O, running the responder
itself: the cheap way to check a transcript in a test.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from openrealtime.config import Defaults, SessionKind
from openrealtime.ids import CountingIds
from openrealtime.responders.base import Responder, apply_chunk
from openrealtime.session import (
    CancelResponse,
    Close,
    Session,
    StartResponse,
    Transcribe,
)
from openrealtime.tools.diff import Change, diff
from openrealtime.tools.normalize import PLACEHOLDER, Normalizer


__all__ = [
    "Difference",
    "Entry",
    "IdAligner",
    "Report",
    "Segment",
    "Transcript",
    "format_report",
    "load_transcript",
    "replay",
    "replay_session",
]

#: The clock of :func:`replay_session`'s sessions.
NOW = 1_760_000_000.0
#: The failure of input audio transcription in :func:`replay_session`, as the
#: server words it when no recognizer is configured.
NO_TRANSCRIBER = "No transcription engine is configured on this server."
#: Close codes that cannot be sent in a close frame.
_UNSENDABLE = frozenset({1005, 1006, 1015})


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a transcript.

    Attributes:
        line: the line number in the file (1-based).
        dir: ``"client"`` or ``"server"``.
        event: the normalized event; a close is ``{"type": "<close>", "code":
            ..., "reason": ...}`` and a binary frame ``{"type": "<binary>",
            "data": base64}``, so that all entries compare alike.
    """

    line: int
    dir: Literal["client", "server"]
    event: dict[str, Any]

    @property
    def type(self) -> str:
        """The event's ``type``."""
        return str(self.event.get("type", "?"))


@dataclass(frozen=True, slots=True)
class Transcript:
    """A loaded transcript."""

    meta: dict[str, Any]
    entries: list[Entry]
    path: str = "-"

    @property
    def query(self) -> str:
        """The recorded connection's query string."""
        return str(self.meta.get("query", ""))

    @property
    def kind(self) -> SessionKind:
        """``transcription`` for ``?intent=transcription``, else ``realtime``."""
        query = dict(parse_qsl(self.query))
        return "transcription" if query.get("intent") == "transcription" else "realtime"

    @property
    def model(self) -> str:
        """The ``?model=`` of the recorded connection."""
        return dict(parse_qsl(self.query)).get("model", "gpt-realtime")


@dataclass(frozen=True, slots=True)
class Segment:
    """A client entry and the server entries that followed it.

    ``client`` is ``None`` for the first segment (``session.created``).
    """

    client: Entry | None
    expected: list[Entry]


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference between the transcript and the replay.

    Attributes:
        kind: ``missing`` (recorded, not received), ``extra`` (received, not
            recorded) or ``changed`` (same type, different content).
        segment: the client entry it followed (``None``: before any).
        type: the server event's type.
        expected: the recorded event (``None`` if extra).
        actual: the received event (``None`` if missing).
        changes: for ``changed``, the path-level differences.
    """

    kind: Literal["missing", "extra", "changed"]
    segment: Entry | None
    type: str
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of a replay."""

    transcript: Transcript
    target: str
    differences: list[Difference]
    client_events: int
    server_events: int

    @property
    def ok(self) -> bool:
        """Whether the replay matched the transcript exactly."""
        return not self.differences


# --- Loading -------------------------------------------------------------------------


def _entry(line: int, record: dict[str, Any]) -> Entry | None:
    direction = record.get("dir")
    if direction not in ("client", "server"):
        return None
    if isinstance(record.get("event"), dict):
        return Entry(line, direction, record["event"])
    if isinstance(record.get("close"), dict):
        close = record["close"]
        event = {
            "type": "<close>",
            "code": close.get("code"),
            "reason": close.get("reason", ""),
        }
        return Entry(line, direction, event)
    if isinstance(record.get("binary"), str):
        return Entry(line, direction, {"type": "<binary>", "data": record["binary"]})
    if isinstance(record.get("text"), str):
        return Entry(line, direction, {"type": "<text>", "text": record["text"]})
    return None


def load_transcript(source: str | Path, text: str | None = None) -> Transcript:
    """Read a transcript written by ``record``.

    Args:
        source: its path (read unless ``text`` is given).
        text: its content.

    Raises:
        ValueError: a line is not a JSON object of the transcript format.
    """
    if text is None:
        text = Path(source).read_text(encoding="utf-8")
    meta: dict[str, Any] = {}
    entries: list[Entry] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ValueError(f"{source}:{number}: not JSON") from None
        if not isinstance(record, dict):
            raise ValueError(f"{source}:{number}: not a JSON object")
        if isinstance(record.get("meta"), dict):
            meta.update(record["meta"])
            continue
        entry = _entry(number, record)
        if entry is None:
            raise ValueError(f"{source}:{number}: not a transcript line")
        entries.append(entry)
    return Transcript(meta, entries, str(source))


def segments(transcript: Transcript) -> list[Segment]:
    """Split a transcript into client entries and what followed each."""
    out: list[Segment] = []
    current = Segment(None, [])
    for entry in transcript.entries:
        if entry.dir == "client":
            out.append(current)
            current = Segment(entry, [])
        else:
            current.expected.append(entry)
    out.append(current)
    return out


# --- Comparing -----------------------------------------------------------------------


class IdAligner:
    """Pairs the recording's placeholders with the live run's.

    Both sides number ids in order of first sight, so one extra or missing
    event renumbers everything after it. Pairs are learnt from events aligned
    by type (a placeholder in the same place on both sides, each not paired
    yet); the live events are then compared in the recording's numbering, and
    recorded client events are sent with the live ids they stand for.
    """

    def __init__(self) -> None:
        self._to_live: dict[str, str] = {}
        self._to_recorded: dict[str, str] = {}

    def _pair(self, recorded: str, live: str) -> None:
        self._to_live[recorded] = live
        self._to_recorded[live] = recorded

    def learn(self, recorded: Any, live: Any) -> None:
        """Pair the placeholders found in the same places of two events."""
        if isinstance(recorded, dict) and isinstance(live, dict):
            for key, value in recorded.items():
                if key in live:
                    self.learn(value, live[key])
        elif isinstance(recorded, list) and isinstance(live, list):
            for a, b in zip(recorded, live, strict=False):
                self.learn(a, b)
        elif isinstance(recorded, str) and isinstance(live, str):
            a, b = PLACEHOLDER.fullmatch(recorded), PLACEHOLDER.fullmatch(live)
            if (
                a is not None
                and b is not None
                and a.group(1) == b.group(1)
                and recorded not in self._to_live
                and live not in self._to_recorded
            ):
                self._pair(recorded, live)

    def recorded_view(self, live: Any) -> Any:
        """A live event with its placeholders in the recording's numbering.

        A live placeholder with no pair keeps its number, marked ``live`` when
        that number means something else in the recording.
        """
        if isinstance(live, str):
            return PLACEHOLDER.sub(self._recorded, live) if "<" in live else live
        if isinstance(live, dict):
            return {k: self.recorded_view(v) for k, v in live.items()}
        if isinstance(live, list):
            return [self.recorded_view(v) for v in live]
        return live

    def _recorded(self, match: re.Match[str]) -> str:
        live = match.group(0)
        recorded = self._to_recorded.get(live)
        if recorded is not None:
            return recorded
        if live in self._to_live:  # taken by another id in the recording
            return f"<live {live[1:]}"
        return live

    def live_view(self, recorded: Any, normalizer: Normalizer) -> Any:
        """A recorded client event with the live run's placeholders.

        A placeholder the live run has no pair for (an ``event_id`` the client
        chose, an item it creates) gets a fresh one of the live numbering.
        """
        if isinstance(recorded, str):
            if "<" not in recorded:
                return recorded
            return PLACEHOLDER.sub(lambda m: self._live(m, normalizer), recorded)
        if isinstance(recorded, dict):
            return {k: self.live_view(v, normalizer) for k, v in recorded.items()}
        if isinstance(recorded, list):
            return [self.live_view(v, normalizer) for v in recorded]
        return recorded

    def _live(self, match: re.Match[str], normalizer: Normalizer) -> str:
        recorded = match.group(0)
        live = self._to_live.get(recorded)
        if live is None:
            live = normalizer.fresh(match.group(1))
            self._pair(recorded, live)
        return live


def compare(
    segment: Segment,
    actual: list[dict[str, Any]],
    aligner: IdAligner | None = None,
) -> list[Difference]:
    """The differences between a segment's recorded server events and ``actual``.

    With an ``aligner``, placeholders are paired from the events aligned by
    type and compared in the recording's numbering.
    """
    aligner = aligner or IdAligner()
    expected = [e.event for e in segment.expected]
    types_e = [str(e.get("type")) for e in expected]
    types_a = [str(a.get("type")) for a in actual]
    out: list[Difference] = []
    matcher = difflib.SequenceMatcher(a=types_e, b=types_a, autojunk=False)
    opcodes = matcher.get_opcodes()
    for op, i1, i2, j1, j2 in opcodes:  # learn every pair before comparing
        if op == "equal":
            for e, a in zip(expected[i1:i2], actual[j1:j2], strict=True):
                aligner.learn(e, a)
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal":
            for e, a in zip(expected[i1:i2], actual[j1:j2], strict=True):
                seen = aligner.recorded_view(a)
                changes = diff(e, seen)
                if changes:
                    out.append(
                        Difference(
                            "changed",
                            segment.client,
                            str(e.get("type")),
                            e,
                            seen,
                            changes,
                        )
                    )
            continue
        for e in expected[i1:i2]:
            out.append(
                Difference("missing", segment.client, str(e.get("type")), e, None)
            )
        for a in actual[j1:j2]:
            seen = aligner.recorded_view(a)
            out.append(
                Difference("extra", segment.client, str(a.get("type")), None, seen)
            )
    return out


def _taken(segment: Segment, events: list[dict[str, Any]]) -> int:
    """How many of ``events`` a segment takes: up to the one that completes the
    recorded types in order (extra events in between are its own), else as
    many as were recorded."""
    types = iter(e.type for e in segment.expected)
    wanted = next(types, None)
    if wanted is None:
        return 0
    for i, event in enumerate(events):
        if event.get("type") == wanted:
            wanted = next(types, None)
            if wanted is None:
                return i + 1
    return min(len(events), len(segment.expected))


def _complete(segment: Segment, events: list[dict[str, Any]]) -> bool:
    """Whether ``events`` hold every type recorded in ``segment``, in order."""
    types = iter(str(e.get("type")) for e in events)
    return all(e.type in types for e in segment.expected)


class _Comparison:
    """Compares segment by segment as a replay goes, with one aligner."""

    def __init__(self) -> None:
        self.aligner = IdAligner()
        self.differences: list[Difference] = []
        self.clients = 0
        self.servers = 0

    def add(self, segment: Segment, actual: list[dict[str, Any]]) -> None:
        self.clients += segment.client is not None
        self.servers += len(actual)
        self.differences.extend(compare(segment, actual, self.aligner))

    def report(self, transcript: Transcript, target: str) -> Report:
        return Report(transcript, target, self.differences, self.clients, self.servers)


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_report(report: Report) -> str:
    """A readable report: one block per client event with differences."""
    t = report.transcript
    if report.ok:
        return (
            f"{t.path}: no differences against {report.target} "
            f"({report.client_events} client events, {report.server_events} server "
            "events)"
        )
    lines = [
        f"{t.path}: {len(report.differences)} difference(s) against {report.target}"
    ]
    current: object = object()
    for d in report.differences:
        if d.segment is not current:
            current = d.segment
            if d.segment is None:
                lines.append("before the first client event:")
            else:
                lines.append(
                    f"after client event {d.segment.type} (line {d.segment.line}):"
                )
        if d.kind == "changed":
            lines.append(f"  changed: {d.type}")
            for c in d.changes:
                if c.op == "added":
                    lines.append(f"    + {c.path}: {_short(c.new)}")
                elif c.op == "removed":
                    lines.append(f"    - {c.path}: {_short(c.old)}")
                else:
                    lines.append(f"    ~ {c.path}: {_short(c.old)} -> {_short(c.new)}")
        elif d.kind == "missing":
            lines.append(f"  missing: {d.type} {_short(d.expected)}")
        else:
            lines.append(f"  extra:   {d.type} {_short(d.actual)}")
    return "\n".join(lines)


# --- Against a server ----------------------------------------------------------------


def target_url(url: str, transcript: Transcript) -> str:
    """``url``, with the transcript's query string if it has none."""
    parts = urlsplit(url)
    if parts.query or not transcript.query:
        return url
    return urlunsplit(parts._replace(query=transcript.query))


async def replay(
    transcript: Transcript,
    url: str,
    *,
    api_key: str | None = None,
    timeout: float = 10.0,
    settle: float = 0.2,
) -> Report:
    """Replay a transcript against a server.

    Args:
        transcript: what to send and what to expect.
        url: the server's WebSocket URL (``ws://host:port/v1/realtime``).
        api_key: sent as ``Authorization: Bearer``.
        timeout: the longest wait for each expected server event.
        settle: after the last client event, how long to wait for server
            events beyond those recorded.

    Returns:
        The report (``report.ok`` when nothing differs).
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    target = target_url(url, transcript)
    normalizer = Normalizer()
    comparison = _Comparison()
    closed = False
    async with connect(
        target,
        additional_headers=headers,
        subprotocols=["realtime"],  # type: ignore[list-item]
        max_size=None,
        ping_interval=None,
        compression=None,
        proxy=None,
    ) as ws:

        async def receive(wait: float) -> dict[str, Any] | None:
            nonlocal closed
            if closed:
                return None
            try:
                message = await asyncio.wait_for(ws.recv(), wait)
            except TimeoutError:
                return None
            except ConnectionClosed:
                closed = True
                code = ws.close_code
                return {
                    "type": "<close>",
                    "code": code,
                    "reason": ws.close_reason or "",
                }
            if isinstance(message, bytes):
                data = base64.b64encode(message).decode("ascii")
                return {"type": "<binary>", "data": data}
            return normalizer.event(json.loads(message), "server")

        all_segments = segments(transcript)
        for index, segment in enumerate(all_segments):
            client = segment.client
            if client is not None and not closed:
                event = client.event
                if event.get("type") == "<close>":
                    code = event.get("code")
                    if not isinstance(code, int) or code in _UNSENDABLE:
                        code = 1000
                    await ws.close(code, str(event.get("reason", "")))
                elif event.get("type") == "<binary>":
                    await ws.send(base64.b64decode(event["data"]))
                elif event.get("type") == "<text>":
                    await ws.send(str(event["text"]))
                else:
                    renamed = comparison.aligner.live_view(event, normalizer)
                    live = normalizer.denormalize(renamed)
                    normalizer.event(live, "client")
                    await ws.send(json.dumps(live))
            got: list[dict[str, Any]] = []
            while not _complete(segment, got):
                received = await receive(timeout)
                if received is None:
                    break
                got.append(received)
            if index == len(all_segments) - 1 and settle > 0:
                while (received := await receive(settle)) is not None:
                    got.append(received)
            # A close the transcript recorded from the client is not echoed
            # in it; the echo received here is not an extra event.
            if client is not None and client.type == "<close>":
                got = [g for g in got if g.get("type") != "<close>"]
            comparison.add(segment, got)
    return comparison.report(transcript, target)


# --- Against an engine, no I/O -------------------------------------------------------


async def replay_session(
    transcript: Transcript,
    *,
    responder: Responder | None = None,
    defaults: Defaults | None = None,
) -> Report:
    """Replay a transcript against a :class:`Session`, with no I/O.

    Each client event is fed to a new session (of the transcript's kind and
    model) and the responder runs to completion before the next, as the
    server's driver does for a client that waits for ``response.done``.

    Args:
        transcript: what to send and what to expect.
        responder: produces responses (default: the echo responder).
        defaults: operator defaults.
    """
    if responder is None:
        from openrealtime.responders.echo import EchoResponder

        responder = EchoResponder()
    session = Session(
        kind=transcript.kind,
        model=transcript.model,
        now=NOW,
        ids=CountingIds(),
        defaults=defaults,
    )
    normalizer = Normalizer()
    comparison = _Comparison()
    out: list[dict[str, Any]] = []

    async def pump() -> None:
        while True:
            for frame in session.data_to_send():
                out.append(normalizer.event(json.loads(frame), "server"))
            actions = session.actions_to_take()
            if not actions:
                return
            for action in actions:
                match action:
                    case StartResponse(request=request):
                        rid = request.response_id
                        async for chunk in responder.respond(request):
                            if not session.response_active(rid):
                                break
                            apply_chunk(session, rid, chunk)
                        session.response_done(rid)
                    case Transcribe(item_id=item_id):
                        session.transcription_failed(item_id, NO_TRANSCRIBER)
                    case Close(code=code, reason=reason):
                        out.append({"type": "<close>", "code": code, "reason": reason})
                    case CancelResponse():
                        pass

    await pump()
    all_segments = segments(transcript)
    for index, segment in enumerate(all_segments):
        client = segment.client
        if client is not None and session.close_code is None:
            event = client.event
            if event.get("type") == "<close>":
                pass  # the client went away: nothing more is sent
            elif event.get("type") == "<binary>":
                session.receive_binary(NOW)
            elif event.get("type") == "<text>":
                session.receive_text(str(event["text"]), NOW)
            else:
                renamed = comparison.aligner.live_view(event, normalizer)
                live = normalizer.denormalize(renamed)
                normalizer.event(live, "client")
                session.receive_text(json.dumps(live), NOW)
            await pump()
        # As over the wire, a segment takes the events up to the last of
        # those recorded after its client event; the rest go to the next (a
        # client that sent two events before reading is recorded that way).
        last = index == len(all_segments) - 1
        count = len(out) if last else _taken(segment, out)
        comparison.add(segment, out[:count])
        del out[:count]
    return comparison.report(transcript, "an in-process Session")
