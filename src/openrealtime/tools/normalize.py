"""Make transcripts comparable: ids, timestamps and audio become placeholders.

Two runs of the same session never share ids (``event_…``, ``item_…``,
``resp_…``, ``call_…``, ``sess_…``), timestamps or, against the hosted API,
audio bytes. A :class:`Normalizer` rewrites one transcript's events so that
two runs that behave the same read the same:

* ids become ``<event_1>``, ``<item_1>``, ``<response_1>``, ``<call_1>``,
  ``<session_1>``, ``<conversation_1>`` (``<id_1>`` for an ``id`` with no known
  prefix), numbered per kind in order of first appearance, and mapped the same
  way everywhere in the transcript (in id fields, and inside the text of
  server events such as error messages once seen in an id field);
* ``expires_at`` and ``created_at`` become ``<timestamp>``, as does
  ``rate_limits.updated``'s ``reset_seconds`` (a time too);
* server audio (``response.output_audio.delta``'s ``delta``, any ``audio``
  string) becomes ``<audio N bytes>``; client audio is kept, since replaying
  needs it;
* ``obfuscation`` becomes ``<obfuscation>``.

:meth:`Normalizer.denormalize` goes the other way for ``replay``: the
placeholders of a recorded client event become the ids of the live run (an
item the live server created), or fresh ids for placeholders seen first in the
client event (an ``event_id`` the client chose).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal


__all__ = ["Normalizer", "PLACEHOLDER", "audio_placeholder"]

Direction = Literal["client", "server"]

#: Id prefixes and the placeholder kind they map to.
_PREFIXES: dict[str, str] = {
    "event": "event",
    "item": "item",
    "resp": "response",
    "call": "call",
    "sess": "session",
    "conv": "conversation",
}
#: Keys whose string value is an id, and the kind used when its prefix is unknown.
_ID_KEYS: dict[str, str] = {
    "event_id": "event",
    "item_id": "item",
    "previous_item_id": "item",
    "response_id": "response",
    "call_id": "call",
    "conversation_id": "conversation",
    "id": "id",
}
_TIMESTAMP_KEYS = frozenset({"expires_at", "created_at", "reset_seconds"})
#: Ids inside free text (error messages): a known prefix, ``_``, then word chars.
_ID_IN_TEXT = re.compile(r"\b(?:event|item|resp|call|sess|conv)_[A-Za-z0-9]+\b")
_PLACEHOLDER = re.compile(r"<(event|item|response|call|session|conversation|id)_(\d+)>")
#: A placeholder (``<item_3>``): its kind and number are groups 1 and 2.
PLACEHOLDER = _PLACEHOLDER
#: The prefix of ids made up for placeholders first seen in client events.
_FRESH_PREFIX = {
    "event": "event_",
    "item": "item_",
    "response": "resp_",
    "call": "call_",
    "session": "sess_",
    "conversation": "conv_",
    "id": "id_",
}


def audio_placeholder(data: str) -> str:
    """``<audio N bytes>`` for base64 audio (N: the decoded length)."""
    try:
        size = len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        size = len(data) * 3 // 4
    return f"<audio {size} bytes>"


class Normalizer:
    """Normalizes the events of one transcript, keeping one mapping of ids.

    Use one normalizer per session, in wire order.
    """

    def __init__(self) -> None:
        self._placeholders: dict[str, str] = {}  # actual id -> placeholder
        self._actual: dict[str, str] = {}  # placeholder -> actual id
        self._counts: dict[str, int] = {}

    # --- Forward: actual -> placeholders ---------------------------------------------

    def event(self, event: dict[str, Any], direction: Direction) -> dict[str, Any]:
        """Return a normalized copy of one event (``event`` is not changed)."""
        audio_delta = (
            direction == "server" and event.get("type") == "response.output_audio.delta"
        )
        out: dict[str, Any] = {}
        for key, value in event.items():
            if audio_delta and key == "delta" and isinstance(value, str):
                out[key] = audio_placeholder(value)
            else:
                out[key] = self._value(key, value, direction)
        return out

    def id(self, actual: str, kind: str = "id") -> str:
        """The placeholder of an id (assigned on first sight).

        Args:
            actual: the id as sent.
            kind: the placeholder kind when the id's prefix is not a known one.
        """
        placeholder = self._placeholders.get(actual)
        if placeholder is None:
            prefix = actual.split("_", 1)[0] if "_" in actual else ""
            kind = _PREFIXES.get(prefix, kind)
            n = self._counts.get(kind, 0) + 1
            self._counts[kind] = n
            placeholder = f"<{kind}_{n}>"
            self._placeholders[actual] = placeholder
            self._actual[placeholder] = actual
        return placeholder

    def _value(self, key: str, value: Any, direction: Direction) -> Any:
        if isinstance(value, str):
            if key in _ID_KEYS:
                return self.id(value, _ID_KEYS[key])
            if key == "audio" and direction == "server":
                return audio_placeholder(value)
            if key == "obfuscation":
                return "<obfuscation>"
            if direction == "server" and "_" in value and _ID_IN_TEXT.search(value):
                return _ID_IN_TEXT.sub(self._known, value)
            return value
        if key in _TIMESTAMP_KEYS and isinstance(value, int | float):
            return "<timestamp>"
        if isinstance(value, dict):
            return {k: self._value(k, v, direction) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value("", v, direction) for v in value]
        return value

    def _known(self, match: re.Match[str]) -> str:
        return self._placeholders.get(match.group(0), match.group(0))

    def fresh(self, kind: str) -> str:
        """A placeholder of ``kind`` not used yet in this transcript (no id yet)."""
        n = self._counts.get(kind, 0) + 1
        self._counts[kind] = n
        return f"<{kind}_{n}>"

    # --- Backward: placeholders -> actual --------------------------------------------

    def denormalize(self, event: dict[str, Any]) -> dict[str, Any]:
        """Return a recorded client event with live ids in its placeholders.

        A placeholder already seen maps to the id it stood for in this run; a
        new one gets a fresh id (``event_r3`` for ``<event_3>``), registered so
        that the server's echo of it normalizes back to the same placeholder.
        """
        result = self._denormalize(event)
        assert isinstance(result, dict)
        return result

    def _denormalize(self, value: Any) -> Any:
        if isinstance(value, str):
            if "<" in value:
                return _PLACEHOLDER.sub(self._resolve, value)
            return value
        if isinstance(value, dict):
            return {k: self._denormalize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._denormalize(v) for v in value]
        return value

    def _resolve(self, match: re.Match[str]) -> str:
        placeholder = match.group(0)
        actual = self._actual.get(placeholder)
        if actual is None:
            kind, n = match.group(1), int(match.group(2))
            actual = f"{_FRESH_PREFIX[kind]}r{n}"
            self._actual[placeholder] = actual
            self._placeholders[actual] = placeholder
            self._counts[kind] = max(self._counts.get(kind, 0), n)
        return actual
