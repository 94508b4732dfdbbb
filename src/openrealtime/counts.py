"""Event counts that the engine keeps as it works (for ``GET /metrics``).

The engine knows each event's class when it decodes or emits it, so counting
there costs one dictionary update per event; reading the type back out of
every frame, as a transport would have to, costs several times that (a
frame is a string to search, an event class is a key that is already
hashed). One :class:`EventCounts` is shared by the sessions of a server:
:class:`~openrealtime.session.Session` takes it as ``counts``.

Label values stay bounded: classes are the wire models', a client frame
that does not decode counts under its GA ``type`` or ``"other"``
(:func:`client_event_type`), and error codes are the engine's own.
"""

from __future__ import annotations

import re

from openrealtime.models.client_events import CLIENT_EVENT_TYPES


__all__ = ["EventCounts", "client_event_type"]

_CLIENT_TYPES = frozenset(CLIENT_EVENT_TYPES)
_HEAD = 256
_TYPE_RE = re.compile(r'"type"\s*:\s*"([a-z_.]{1,64})"')
_PREFIX = '{"type":"'
_BPREFIX = b'{"type":"'
#: Where a type that starts at offset 9 must have ended (the longest is < 64).
_TYPE_END = 9 + 65


def client_event_type(data: str | bytes) -> str:
    """The ``type`` of a client frame, read from its first bytes.

    Clients put ``type`` first, so a look at the head of the frame is enough
    and a 15 MiB audio append is not scanned. Anything that is not a GA client
    event type is ``"other"``.
    """
    # The fast path: '{"type":"<type>"' as every SDK writes it.
    if isinstance(data, str):
        if data.startswith(_PREFIX):
            end = data.find('"', 9, _TYPE_END)
            if end > 0 and (event_type := data[9:end]) in _CLIENT_TYPES:
                return event_type
    elif data.startswith(_BPREFIX):
        end = data.find(b'"', 9, _TYPE_END)
        if end > 0 and (event_type := data[9:end].decode("latin-1")) in _CLIENT_TYPES:
            return event_type
    head = data[:_HEAD]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    match = _TYPE_RE.search(text)
    if match is None or match.group(1) not in _CLIENT_TYPES:
        return "other"
    return match.group(1)


def _tag(key: type | str) -> str:
    if isinstance(key, str):
        return key
    return str(key.__struct_config__.tag)  # type: ignore[attr-defined]


class EventCounts:
    """Events received and sent, and errors sent, by the sessions that share it.

    Attributes:
        received: client events by class; a frame that did not decode, by
            its type name (:func:`client_event_type`).
        sent: server events by class.
        errors: ``error`` events sent, by code (``"null"``: none).
    """

    __slots__ = ("errors", "received", "sent")

    def __init__(self) -> None:
        self.received: dict[type | str, int] = {}
        self.sent: dict[type, int] = {}
        self.errors: dict[str, int] = {}

    def received_by_type(self) -> dict[str, int]:
        """:attr:`received` by wire type name."""
        return _by_name(self.received)

    def sent_by_type(self) -> dict[str, int]:
        """:attr:`sent` by wire type name."""
        return _by_name(self.sent)  # type: ignore[arg-type]


def _by_name(counts: dict[type | str, int]) -> dict[str, int]:
    named: dict[str, int] = {}
    for key, n in counts.items():
        name = _tag(key)
        named[name] = named.get(name, 0) + n
    return named
