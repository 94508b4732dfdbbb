"""Responses: what a client asks for (``response.create``) and what it gets."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from openrealtime.models.base import UNSET, UnsetType, Wire
from openrealtime.models.items import ConversationItem
from openrealtime.models.session import (
    AudioFormat,
    MaxOutputTokens,
    Prompt,
    Reasoning,
    Tool,
    ToolChoice,
    VoiceValue,
)
from openrealtime.typing import Modality, ResponseStatus


__all__ = [
    "CachedTokensDetails",
    "InputTokenDetails",
    "ItemReference",
    "OutputTokenDetails",
    "Response",
    "ResponseAudio",
    "ResponseAudioOutput",
    "ResponseAudioOutputUpdate",
    "ResponseAudioUpdate",
    "ResponseCreateParams",
    "ResponseStatusDetails",
    "ResponseStatusError",
    "Usage",
]

#: "Set of 16 key-value pairs": keys up to 64, values up to 512 characters.
Metadata = dict[
    Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=512)]
]


# In ``response.create`` every optional field may be ``null``, which means
# the same as leaving it out: LiveKit sends ``"instructions": null`` on every
# reply, against the hosted API (session.update's stricter rules differ).


class ResponseAudioOutputUpdate(Wire, kw_only=True):
    """``response.audio.output`` as sent in ``response.create``."""

    format: AudioFormat | None | UnsetType = UNSET
    voice: VoiceValue | None | UnsetType = UNSET


class ResponseAudioUpdate(Wire, kw_only=True):
    """``response.audio`` as sent in ``response.create``."""

    output: ResponseAudioOutputUpdate | None | UnsetType = UNSET


class ItemReference(Wire, tag_field="type", tag="item_reference", kw_only=True):
    """An item of the conversation, named in a response's ``input`` by id."""

    id: str


class ResponseCreateParams(Wire, kw_only=True):
    """Per-response overrides (RealtimeResponseCreateParams)."""

    output_modalities: list[Modality] | None | UnsetType = UNSET
    instructions: str | None | UnsetType = UNSET
    audio: ResponseAudioUpdate | None | UnsetType = UNSET
    tools: list[Tool] | None | UnsetType = UNSET
    tool_choice: ToolChoice | None | UnsetType = UNSET
    parallel_tool_calls: bool | None | UnsetType = UNSET
    reasoning: Reasoning | None | UnsetType = UNSET
    max_output_tokens: MaxOutputTokens | None | UnsetType = UNSET
    # "auto" adds to the default conversation, "none" makes an out-of-band
    # response; other strings are conversation ids.
    conversation: str | None | UnsetType = UNSET
    metadata: Annotated[Metadata, Meta(max_length=16)] | None | UnsetType = UNSET
    prompt: Prompt | None | UnsetType = UNSET
    # The spec's own out-of-band example puts ``item_reference`` items here.
    input: list[ConversationItem | ItemReference] | None | UnsetType = UNSET


class ResponseStatusError(Wire, kw_only=True):
    """Why a response failed."""

    type: str
    code: str | None = None
    message: str | UnsetType = UNSET


class ResponseStatusDetails(Wire, kw_only=True):
    """Details of a response's final status."""

    type: Literal["completed", "cancelled", "failed", "incomplete"]
    reason: (
        Literal[
            "turn_detected", "client_cancelled", "max_output_tokens", "content_filter"
        ]
        | UnsetType
    ) = UNSET
    error: ResponseStatusError | UnsetType = UNSET


class CachedTokensDetails(Wire, kw_only=True):
    """Cached input tokens by kind."""

    text_tokens: int = 0
    image_tokens: int = 0
    audio_tokens: int = 0


class InputTokenDetails(Wire, kw_only=True):
    """Input tokens by kind."""

    cached_tokens: int = 0
    text_tokens: int = 0
    image_tokens: int = 0
    audio_tokens: int = 0
    cached_tokens_details: CachedTokensDetails | UnsetType = UNSET


class OutputTokenDetails(Wire, kw_only=True):
    """Output tokens by kind."""

    text_tokens: int = 0
    audio_tokens: int = 0


class Usage(Wire, kw_only=True):
    """Token counts of a response."""

    total_tokens: int
    input_tokens: int
    output_tokens: int
    input_token_details: InputTokenDetails
    output_token_details: OutputTokenDetails


class ResponseAudioOutput(Wire, kw_only=True):
    """The audio output settings a response used."""

    format: AudioFormat
    voice: VoiceValue


class ResponseAudio(Wire, kw_only=True):
    """Audio settings of a response."""

    output: ResponseAudioOutput


class Response(Wire, kw_only=True):
    """The response resource (RealtimeResponse), in the hosted key order."""

    object: Literal["realtime.response"] = "realtime.response"
    id: str
    status: ResponseStatus
    status_details: ResponseStatusDetails | None = None
    output: list[ConversationItem]
    conversation_id: str | None
    output_modalities: list[Modality]
    max_output_tokens: MaxOutputTokens
    audio: ResponseAudio
    usage: Usage | None = None
    metadata: dict[str, str] | None = None
