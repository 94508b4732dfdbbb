"""Client events: one Struct per event, a union on ``type``.

:data:`ClientEvent` is what a WebSocket accepts: the twelve types the hosted
API lists when it rejects an unknown one (WIRE_RULES §2, in that order). Two
more events of the spec are modelled but not accepted on a WebSocket, as on the
hosted API: ``output_audio_buffer.clear`` is "WebRTC/SIP only", and
``transcription_session.update`` is a Beta event that GA answers with
``invalid_value`` [WIRE 75, 85].
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from openrealtime.models.base import UNSET, UnsetType, Wire
from openrealtime.models.items import ConversationItem
from openrealtime.models.responses import ResponseCreateParams
from openrealtime.models.session import (
    NoiseReductionUpdate,
    SessionUpdate,
    TranscriptionUpdate,
)
from openrealtime.typing import Include


__all__ = [
    "BetaTranscriptionSessionUpdate",
    "BetaTranscriptionTurnDetection",
    "CLIENT_EVENT_TYPES",
    "ClientEvent",
    "ClientEventBase",
    "ConversationItemCreateEvent",
    "ConversationItemDeleteEvent",
    "ConversationItemRetrieveEvent",
    "ConversationItemTruncateEvent",
    "InputAudioBufferAppendEvent",
    "InputAudioBufferClearEvent",
    "InputAudioBufferCommitEvent",
    "OutputAudioBufferClearEvent",
    "ResponseCancelEvent",
    "ResponseCreateEvent",
    "SessionCloseEvent",
    "SessionInputAudioBufferAppendEvent",
    "SessionUpdateEvent",
    "TranscriptionSessionUpdateEvent",
]

#: ``event_id``: "Optional client-generated ID used to identify this event."
EventId = Annotated[str, Meta(max_length=512)]


class ClientEventBase(Wire, tag_field="type", kw_only=True):
    """Base of all client events."""

    event_id: EventId | UnsetType = UNSET


class SessionUpdateEvent(ClientEventBase, tag="session.update", kw_only=True):
    """Update the session's configuration."""

    session: SessionUpdate


class SessionCloseEvent(ClientEventBase, tag="session.close", kw_only=True):
    """Close the session (accepted by the hosted API; not in the spec)."""


class InputAudioBufferAppendEvent(
    ClientEventBase, tag="input_audio_buffer.append", kw_only=True
):
    """Append base64 audio bytes to the input audio buffer."""

    audio: str


class SessionInputAudioBufferAppendEvent(
    ClientEventBase, tag="session.input_audio_buffer.append", kw_only=True
):
    """Alias of ``input_audio_buffer.append`` that the hosted API accepts."""

    audio: str


class InputAudioBufferCommitEvent(
    ClientEventBase, tag="input_audio_buffer.commit", kw_only=True
):
    """Commit the input audio buffer as a user message."""


class InputAudioBufferClearEvent(
    ClientEventBase, tag="input_audio_buffer.clear", kw_only=True
):
    """Clear the input audio buffer."""


class ConversationItemCreateEvent(
    ClientEventBase, tag="conversation.item.create", kw_only=True
):
    """Add an item to the conversation."""

    previous_item_id: str | UnsetType = UNSET
    item: ConversationItem


class ConversationItemTruncateEvent(
    ClientEventBase, tag="conversation.item.truncate", kw_only=True
):
    """Truncate an assistant message's audio."""

    item_id: str
    content_index: Annotated[int, Meta(ge=0)]
    audio_end_ms: Annotated[int, Meta(ge=0)]


class ConversationItemDeleteEvent(
    ClientEventBase, tag="conversation.item.delete", kw_only=True
):
    """Remove an item from the conversation."""

    item_id: str


class ConversationItemRetrieveEvent(
    ClientEventBase, tag="conversation.item.retrieve", kw_only=True
):
    """Ask for the server's copy of an item."""

    item_id: str


class ResponseCreateEvent(ClientEventBase, tag="response.create", kw_only=True):
    """Ask the model for a response."""

    response: ResponseCreateParams | UnsetType = UNSET


class ResponseCancelEvent(ClientEventBase, tag="response.cancel", kw_only=True):
    """Cancel the response in progress."""

    response_id: str | UnsetType = UNSET


class OutputAudioBufferClearEvent(
    ClientEventBase, tag="output_audio_buffer.clear", kw_only=True
):
    """Cut off the current audio response (WebRTC/SIP only)."""


class BetaTranscriptionTurnDetection(Wire, kw_only=True):
    """Beta ``turn_detection`` of a transcription session."""

    type: Literal["server_vad"] | UnsetType = UNSET
    threshold: float | UnsetType = UNSET
    prefix_padding_ms: int | UnsetType = UNSET
    silence_duration_ms: int | UnsetType = UNSET


class BetaTranscriptionSessionUpdate(Wire, kw_only=True):
    """Beta transcription session (RealtimeTranscriptionSessionCreateRequest)."""

    turn_detection: BetaTranscriptionTurnDetection | UnsetType = UNSET
    input_audio_noise_reduction: NoiseReductionUpdate | None | UnsetType = UNSET
    input_audio_format: Literal["pcm16", "g711_ulaw", "g711_alaw"] | UnsetType = UNSET
    input_audio_transcription: TranscriptionUpdate | UnsetType = UNSET
    include: list[Include] | UnsetType = UNSET


class TranscriptionSessionUpdateEvent(
    ClientEventBase, tag="transcription_session.update", kw_only=True
):
    """Beta transcription session update (not accepted in GA)."""

    session: BetaTranscriptionSessionUpdate


ClientEvent = (
    SessionUpdateEvent
    | SessionCloseEvent
    | InputAudioBufferAppendEvent
    | SessionInputAudioBufferAppendEvent
    | InputAudioBufferCommitEvent
    | InputAudioBufferClearEvent
    | ConversationItemCreateEvent
    | ConversationItemTruncateEvent
    | ConversationItemDeleteEvent
    | ConversationItemRetrieveEvent
    | ResponseCreateEvent
    | ResponseCancelEvent
)

#: The client event types a WebSocket accepts, in the hosted API's order.
CLIENT_EVENT_TYPES: tuple[str, ...] = (
    "session.update",
    "session.close",
    "input_audio_buffer.append",
    "session.input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
)
