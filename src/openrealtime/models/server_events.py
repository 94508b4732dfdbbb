"""Server events: one Struct per event, a union on ``type``.

All 47 GA server events of the spec. ``event_id`` is always the server's own
(``event_`` + 21 base62 characters); fields that the hosted API sends as
``null`` default to ``None`` so they are written, not left out.
"""

from __future__ import annotations

from typing import Literal

from openrealtime.models.base import UNSET, UnsetType, Wire
from openrealtime.models.items import ConversationItem
from openrealtime.models.responses import Response
from openrealtime.models.session import SessionConfig, Transcription


__all__ = [
    "BetaTranscriptionSession",
    "ClientSecret",
    "ContentPartInfo",
    "Conversation",
    "ConversationCreatedEvent",
    "ConversationItemAddedEvent",
    "ConversationItemCreatedEvent",
    "ConversationItemDeletedEvent",
    "ConversationItemDoneEvent",
    "ConversationItemInputAudioTranscriptionCompletedEvent",
    "ConversationItemInputAudioTranscriptionDeltaEvent",
    "ConversationItemInputAudioTranscriptionFailedEvent",
    "ConversationItemInputAudioTranscriptionSegmentEvent",
    "ConversationItemRetrievedEvent",
    "ConversationItemTruncatedEvent",
    "ErrorDetail",
    "ErrorEvent",
    "InputAudioBufferClearedEvent",
    "InputAudioBufferCommittedEvent",
    "InputAudioBufferDtmfEventReceivedEvent",
    "InputAudioBufferSpeechStartedEvent",
    "InputAudioBufferSpeechStoppedEvent",
    "InputAudioBufferTimeoutTriggeredEvent",
    "LogProb",
    "MCPListToolsCompletedEvent",
    "MCPListToolsFailedEvent",
    "MCPListToolsInProgressEvent",
    "OutputAudioBufferClearedEvent",
    "OutputAudioBufferStartedEvent",
    "OutputAudioBufferStoppedEvent",
    "RateLimit",
    "RateLimitsUpdatedEvent",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseCreatedEvent",
    "ResponseDoneEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseMCPCallArgumentsDeltaEvent",
    "ResponseMCPCallArgumentsDoneEvent",
    "ResponseMCPCallCompletedEvent",
    "ResponseMCPCallFailedEvent",
    "ResponseMCPCallInProgressEvent",
    "ResponseOutputAudioDeltaEvent",
    "ResponseOutputAudioDoneEvent",
    "ResponseOutputAudioTranscriptDeltaEvent",
    "ResponseOutputAudioTranscriptDoneEvent",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseOutputTextDeltaEvent",
    "ResponseOutputTextDoneEvent",
    "SERVER_EVENT_TYPES",
    "ServerEvent",
    "ServerEventBase",
    "SessionCreatedEvent",
    "SessionUpdatedEvent",
    "TranscriptionFailure",
    "TranscriptionLanguage",
    "TranscriptionSessionUpdatedEvent",
    "TranscriptionUsageDuration",
    "TranscriptionUsageTokens",
    "TranscriptionUsageTokensDetails",
]


class ServerEventBase(Wire, tag_field="type", kw_only=True):
    """Base of all server events."""

    event_id: str


# --- Errors ---------------------------------------------------------------------------


class ErrorDetail(Wire, kw_only=True):
    """The ``error`` object: hosted wire identity of a failure (WIRE_RULES §1)."""

    type: str
    code: str | None
    message: str
    param: str | None
    #: The client's ``event_id`` echoed back, ``null`` when it sent none.
    event_id: str | None


class ErrorEvent(ServerEventBase, tag="error", kw_only=True):
    """An error; most are not fatal and the session stays open."""

    error: ErrorDetail


# --- Session and conversation ---------------------------------------------------------


class SessionCreatedEvent(ServerEventBase, tag="session.created", kw_only=True):
    """The first event of every connection: the effective configuration."""

    session: SessionConfig


class SessionUpdatedEvent(ServerEventBase, tag="session.updated", kw_only=True):
    """Sent after an accepted ``session.update``: the full effective config."""

    session: SessionConfig


class ClientSecret(Wire, kw_only=True):
    """A Beta client secret."""

    value: str
    expires_at: int


class BetaTranscriptionSession(Wire, kw_only=True):
    """Beta transcription session (RealtimeTranscriptionSessionCreateResponse)."""

    client_secret: ClientSecret
    modalities: list[str] | UnsetType = UNSET
    input_audio_format: str | UnsetType = UNSET
    input_audio_transcription: Transcription | UnsetType = UNSET
    turn_detection: dict[str, object] | UnsetType = UNSET


class TranscriptionSessionUpdatedEvent(
    ServerEventBase, tag="transcription_session.updated", kw_only=True
):
    """Beta transcription session acknowledgement (never sent in GA)."""

    session: BetaTranscriptionSession


class Conversation(Wire, kw_only=True):
    """A conversation resource."""

    id: str
    object: Literal["realtime.conversation"] = "realtime.conversation"


class ConversationCreatedEvent(
    ServerEventBase, tag="conversation.created", kw_only=True
):
    """A conversation was created."""

    conversation: Conversation


class ConversationItemCreatedEvent(
    ServerEventBase, tag="conversation.item.created", kw_only=True
):
    """An item was created (older name of ``conversation.item.added``)."""

    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemAddedEvent(
    ServerEventBase, tag="conversation.item.added", kw_only=True
):
    """An item was added to the conversation."""

    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemDoneEvent(
    ServerEventBase, tag="conversation.item.done", kw_only=True
):
    """An item is complete."""

    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemDeletedEvent(
    ServerEventBase, tag="conversation.item.deleted", kw_only=True
):
    """An item was deleted."""

    item_id: str


class ConversationItemRetrievedEvent(
    ServerEventBase, tag="conversation.item.retrieved", kw_only=True
):
    """The server's copy of an item, as asked."""

    item: ConversationItem


class ConversationItemTruncatedEvent(
    ServerEventBase, tag="conversation.item.truncated", kw_only=True
):
    """An assistant audio message was truncated."""

    item_id: str
    content_index: int
    audio_end_ms: int


# --- Input audio transcription --------------------------------------------------------


class LogProb(Wire, kw_only=True):
    """A token's log probability."""

    token: str
    logprob: float
    bytes: list[int]


class TranscriptionLanguage(Wire, kw_only=True):
    """A language detected in the audio."""

    code: str


class TranscriptionUsageTokensDetails(Wire, kw_only=True):
    """Input tokens of a transcription, by kind."""

    text_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET


class TranscriptionUsageTokens(Wire, tag_field="type", tag="tokens", kw_only=True):
    """Transcription usage billed by tokens."""

    input_tokens: int
    input_token_details: TranscriptionUsageTokensDetails | UnsetType = UNSET
    output_tokens: int
    total_tokens: int


class TranscriptionUsageDuration(Wire, tag_field="type", tag="duration", kw_only=True):
    """Transcription usage billed by duration."""

    seconds: float


class ConversationItemInputAudioTranscriptionCompletedEvent(
    ServerEventBase,
    tag="conversation.item.input_audio_transcription.completed",
    kw_only=True,
):
    """The transcript of a user audio item is complete."""

    item_id: str
    content_index: int
    transcript: str
    languages: list[TranscriptionLanguage] | UnsetType = UNSET
    logprobs: list[LogProb] | None | UnsetType = UNSET
    usage: TranscriptionUsageTokens | TranscriptionUsageDuration


class ConversationItemInputAudioTranscriptionDeltaEvent(
    ServerEventBase,
    tag="conversation.item.input_audio_transcription.delta",
    kw_only=True,
):
    """A piece of a user audio item's transcript."""

    item_id: str
    content_index: int | UnsetType = UNSET
    delta: str | UnsetType = UNSET
    logprobs: list[LogProb] | None | UnsetType = UNSET
    # Stream obfuscation padding: not in the schema, but in the spec's own
    # (captured) example, as on ``response.mcp_call_arguments.delta``.
    obfuscation: str | None | UnsetType = UNSET


class TranscriptionFailure(Wire, kw_only=True):
    """Why a transcription failed."""

    type: str | UnsetType = UNSET
    # Like every hosted error, ``code`` and ``param`` may be ``null`` (the
    # spec's own example sends ``"param": null``).
    code: str | None | UnsetType = UNSET
    message: str | UnsetType = UNSET
    param: str | None | UnsetType = UNSET


class ConversationItemInputAudioTranscriptionFailedEvent(
    ServerEventBase,
    tag="conversation.item.input_audio_transcription.failed",
    kw_only=True,
):
    """A user audio item could not be transcribed."""

    item_id: str
    content_index: int
    error: TranscriptionFailure


class ConversationItemInputAudioTranscriptionSegmentEvent(
    ServerEventBase,
    tag="conversation.item.input_audio_transcription.segment",
    kw_only=True,
):
    """A diarized segment of a user audio item."""

    item_id: str
    content_index: int
    text: str
    id: str
    speaker: str
    start: float
    end: float


# --- Input audio buffer ---------------------------------------------------------------


class InputAudioBufferCommittedEvent(
    ServerEventBase, tag="input_audio_buffer.committed", kw_only=True
):
    """The input audio buffer became a user message item."""

    previous_item_id: str | None = None
    item_id: str


class InputAudioBufferClearedEvent(
    ServerEventBase, tag="input_audio_buffer.cleared", kw_only=True
):
    """The input audio buffer was cleared."""


class InputAudioBufferSpeechStartedEvent(
    ServerEventBase, tag="input_audio_buffer.speech_started", kw_only=True
):
    """Server VAD detected the start of speech."""

    audio_start_ms: int
    item_id: str


class InputAudioBufferSpeechStoppedEvent(
    ServerEventBase, tag="input_audio_buffer.speech_stopped", kw_only=True
):
    """Server VAD detected the end of speech."""

    audio_end_ms: int
    item_id: str


class InputAudioBufferTimeoutTriggeredEvent(
    ServerEventBase, tag="input_audio_buffer.timeout_triggered", kw_only=True
):
    """The idle timeout of server VAD expired."""

    audio_start_ms: int
    audio_end_ms: int
    item_id: str


class _UnnumberedEventBase(Wire, tag_field="type", kw_only=True):
    """Base of the one server event that carries no ``event_id``."""


class InputAudioBufferDtmfEventReceivedEvent(
    _UnnumberedEventBase, tag="input_audio_buffer.dtmf_event_received", kw_only=True
):
    """A DTMF key press (SIP calls)."""

    event: str
    received_at: int


class OutputAudioBufferStartedEvent(
    ServerEventBase, tag="output_audio_buffer.started", kw_only=True
):
    """The server began streaming audio (WebRTC/SIP)."""

    response_id: str


class OutputAudioBufferStoppedEvent(
    ServerEventBase, tag="output_audio_buffer.stopped", kw_only=True
):
    """The output audio buffer drained (WebRTC/SIP)."""

    response_id: str


class OutputAudioBufferClearedEvent(
    ServerEventBase, tag="output_audio_buffer.cleared", kw_only=True
):
    """The output audio buffer was cleared (WebRTC/SIP)."""

    response_id: str


# --- Responses ------------------------------------------------------------------------


class ResponseCreatedEvent(ServerEventBase, tag="response.created", kw_only=True):
    """A response began."""

    response: Response


class ResponseDoneEvent(ServerEventBase, tag="response.done", kw_only=True):
    """A response ended (completed, cancelled, failed or incomplete)."""

    response: Response


class ResponseOutputItemAddedEvent(
    ServerEventBase, tag="response.output_item.added", kw_only=True
):
    """A response added an output item."""

    response_id: str
    output_index: int
    item: ConversationItem


class ResponseOutputItemDoneEvent(
    ServerEventBase, tag="response.output_item.done", kw_only=True
):
    """An output item of a response is complete."""

    response_id: str
    output_index: int
    item: ConversationItem


class ContentPartInfo(Wire, tag_field="type", kw_only=True):
    """A content part as announced in ``response.content_part.*``."""

    text: str | UnsetType = UNSET
    audio: str | UnsetType = UNSET
    transcript: str | UnsetType = UNSET


class _TextPartInfo(ContentPartInfo, tag="text", kw_only=True):
    pass


class _AudioPartInfo(ContentPartInfo, tag="audio", kw_only=True):
    pass


class _OutputTextPartInfo(ContentPartInfo, tag="output_text", kw_only=True):
    pass


class _OutputAudioPartInfo(ContentPartInfo, tag="output_audio", kw_only=True):
    pass


PartInfo = _TextPartInfo | _AudioPartInfo | _OutputTextPartInfo | _OutputAudioPartInfo


class _ResponsePartEvent(ServerEventBase, kw_only=True):
    response_id: str
    item_id: str
    output_index: int
    content_index: int


class ResponseContentPartAddedEvent(
    _ResponsePartEvent, tag="response.content_part.added", kw_only=True
):
    """A content part was added to an output item."""

    part: PartInfo


class ResponseContentPartDoneEvent(
    _ResponsePartEvent, tag="response.content_part.done", kw_only=True
):
    """A content part is complete."""

    part: PartInfo


class ResponseOutputTextDeltaEvent(
    _ResponsePartEvent, tag="response.output_text.delta", kw_only=True
):
    """A piece of output text."""

    delta: str


class ResponseOutputTextDoneEvent(
    _ResponsePartEvent, tag="response.output_text.done", kw_only=True
):
    """Output text is complete."""

    text: str


class ResponseOutputAudioDeltaEvent(
    _ResponsePartEvent, tag="response.output_audio.delta", kw_only=True
):
    """A chunk of output audio (base64)."""

    delta: str


class ResponseOutputAudioDoneEvent(
    _ResponsePartEvent, tag="response.output_audio.done", kw_only=True
):
    """Output audio is complete."""


class ResponseOutputAudioTranscriptDeltaEvent(
    _ResponsePartEvent, tag="response.output_audio_transcript.delta", kw_only=True
):
    """A piece of the output audio's transcript."""

    delta: str


class ResponseOutputAudioTranscriptDoneEvent(
    _ResponsePartEvent, tag="response.output_audio_transcript.done", kw_only=True
):
    """The output audio's transcript is complete."""

    transcript: str


class ResponseFunctionCallArgumentsDeltaEvent(
    ServerEventBase, tag="response.function_call_arguments.delta", kw_only=True
):
    """A piece of a function call's arguments."""

    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


class ResponseFunctionCallArgumentsDoneEvent(
    ServerEventBase, tag="response.function_call_arguments.done", kw_only=True
):
    """A function call's arguments are complete."""

    response_id: str
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: str


class ResponseMCPCallArgumentsDeltaEvent(
    ServerEventBase, tag="response.mcp_call_arguments.delta", kw_only=True
):
    """A piece of an MCP call's arguments."""

    response_id: str
    item_id: str
    output_index: int
    delta: str
    obfuscation: str | None | UnsetType = UNSET


class ResponseMCPCallArgumentsDoneEvent(
    ServerEventBase, tag="response.mcp_call_arguments.done", kw_only=True
):
    """An MCP call's arguments are complete."""

    response_id: str
    item_id: str
    output_index: int
    arguments: str


class ResponseMCPCallInProgressEvent(
    ServerEventBase, tag="response.mcp_call.in_progress", kw_only=True
):
    """An MCP call started."""

    output_index: int
    item_id: str


class ResponseMCPCallCompletedEvent(
    ServerEventBase, tag="response.mcp_call.completed", kw_only=True
):
    """An MCP call succeeded."""

    output_index: int
    item_id: str


class ResponseMCPCallFailedEvent(
    ServerEventBase, tag="response.mcp_call.failed", kw_only=True
):
    """An MCP call failed."""

    output_index: int
    item_id: str


class MCPListToolsInProgressEvent(
    ServerEventBase, tag="mcp_list_tools.in_progress", kw_only=True
):
    """Listing the tools of an MCP server started."""

    item_id: str


class MCPListToolsCompletedEvent(
    ServerEventBase, tag="mcp_list_tools.completed", kw_only=True
):
    """Listing the tools of an MCP server succeeded."""

    item_id: str


class MCPListToolsFailedEvent(
    ServerEventBase, tag="mcp_list_tools.failed", kw_only=True
):
    """Listing the tools of an MCP server failed."""

    item_id: str


class RateLimit(Wire, kw_only=True):
    """One rate limit's state."""

    name: Literal["requests", "tokens"]
    limit: int
    remaining: int
    reset_seconds: float


class RateLimitsUpdatedEvent(ServerEventBase, tag="rate_limits.updated", kw_only=True):
    """Rate limits after a response."""

    rate_limits: list[RateLimit]


ServerEvent = (
    ConversationCreatedEvent
    | ConversationItemCreatedEvent
    | ConversationItemDeletedEvent
    | ConversationItemInputAudioTranscriptionCompletedEvent
    | ConversationItemInputAudioTranscriptionDeltaEvent
    | ConversationItemInputAudioTranscriptionFailedEvent
    | ConversationItemRetrievedEvent
    | ConversationItemTruncatedEvent
    | ErrorEvent
    | InputAudioBufferClearedEvent
    | InputAudioBufferCommittedEvent
    | InputAudioBufferDtmfEventReceivedEvent
    | InputAudioBufferSpeechStartedEvent
    | InputAudioBufferSpeechStoppedEvent
    | RateLimitsUpdatedEvent
    | ResponseOutputAudioDeltaEvent
    | ResponseOutputAudioDoneEvent
    | ResponseOutputAudioTranscriptDeltaEvent
    | ResponseOutputAudioTranscriptDoneEvent
    | ResponseContentPartAddedEvent
    | ResponseContentPartDoneEvent
    | ResponseCreatedEvent
    | ResponseDoneEvent
    | ResponseFunctionCallArgumentsDeltaEvent
    | ResponseFunctionCallArgumentsDoneEvent
    | ResponseOutputItemAddedEvent
    | ResponseOutputItemDoneEvent
    | ResponseOutputTextDeltaEvent
    | ResponseOutputTextDoneEvent
    | SessionCreatedEvent
    | SessionUpdatedEvent
    | OutputAudioBufferStartedEvent
    | OutputAudioBufferStoppedEvent
    | OutputAudioBufferClearedEvent
    | ConversationItemAddedEvent
    | ConversationItemDoneEvent
    | InputAudioBufferTimeoutTriggeredEvent
    | ConversationItemInputAudioTranscriptionSegmentEvent
    | MCPListToolsInProgressEvent
    | MCPListToolsCompletedEvent
    | MCPListToolsFailedEvent
    | ResponseMCPCallArgumentsDeltaEvent
    | ResponseMCPCallArgumentsDoneEvent
    | ResponseMCPCallInProgressEvent
    | ResponseMCPCallCompletedEvent
    | ResponseMCPCallFailedEvent
    | TranscriptionSessionUpdatedEvent
)

#: Every server event type, in the spec's order.
SERVER_EVENT_TYPES: tuple[str, ...] = tuple(
    str(cls.__struct_config__.tag) for cls in ServerEvent.__args__
)
