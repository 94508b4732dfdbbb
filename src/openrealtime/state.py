"""Which client events a session accepts, as a table (in the manner of h11).

A realtime session accepts every GA client event while it is open. A
transcription session only configures itself and takes audio: it has no
responses, and its conversation items come only from committed audio.
Anything outside the table gets one error in one format.
"""

from __future__ import annotations

import enum

from openrealtime.exceptions import InvalidRequestError
from openrealtime.models.client_events import CLIENT_EVENT_TYPES


__all__ = ["ACCEPTED", "CLOSED", "OPEN", "State", "not_accepted"]


class State(enum.IntEnum):
    """Lifecycle of a session."""

    OPEN = 1
    CLOSED = 2


OPEN = State.OPEN
CLOSED = State.CLOSED

_TRANSCRIPTION_EVENTS = frozenset(
    {
        "session.update",
        "session.close",
        "input_audio_buffer.append",
        "session.input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.delete",
        "conversation.item.retrieve",
    }
)

#: ACCEPTED[kind]: the client event types a session of that kind accepts
#: while OPEN. A CLOSED session accepts nothing (the driver stops feeding it).
ACCEPTED: dict[str, frozenset[str]] = {
    "realtime": frozenset(CLIENT_EVENT_TYPES),
    "transcription": _TRANSCRIPTION_EVENTS,
}


def not_accepted(event_type: str, kind: str) -> InvalidRequestError:
    """The error for an event that a session of this kind does not accept."""
    return InvalidRequestError(
        "invalid_event",
        f"The event '{event_type}' is not supported in a {kind} session.",
        "type",
    )
