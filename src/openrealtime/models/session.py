"""Session configuration: what a client sends (partial) and what the server holds.

Two families of types, on purpose (STYLE_ANCHORS habit 2):

* ``*Update`` types are what a client sends in ``session.update`` or in the
  body of ``POST /v1/realtime/client_secrets``. Every field is
  ``T | UnsetType = UNSET`` so that *absent* and ``null`` stay apart.
* The effective types (``RealtimeSessionConfig``, ``TranscriptionSessionConfig``
  and the objects they carry) are complete and frozen: the server holds one and
  sends it, whole, in ``session.created`` / ``session.updated``.

Field order of the effective types follows the hosted API's ``session.created``
(WIRE_RULES §5), because msgspec writes fields in definition order.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from openrealtime.models.base import UNSET, UnsetType, Wire
from openrealtime.typing import (
    Eagerness,
    Include,
    Modality,
    NoiseReductionType,
    ReasoningEffort,
    ToolChoiceMode,
    TranscriptionDelay,
    TruncationMode,
    Voice,
)


__all__ = [
    "AudioFormat",
    "AudioInputConfig",
    "AudioInputUpdate",
    "AudioOutputConfig",
    "AudioOutputUpdate",
    "CustomVoice",
    "FunctionTool",
    "MCPTool",
    "MCPToolFilter",
    "MCPToolRequireApproval",
    "MaxOutputTokens",
    "NoiseReduction",
    "NoiseReductionUpdate",
    "PcmFormat",
    "PcmaFormat",
    "PcmuFormat",
    "Prompt",
    "RealtimeAudioConfig",
    "RealtimeAudioUpdate",
    "RealtimeSessionConfig",
    "RealtimeSessionUpdate",
    "Reasoning",
    "RetentionRatioTruncation",
    "SemanticVad",
    "ServerVad",
    "SessionConfig",
    "SessionUpdate",
    "TokenLimits",
    "Tool",
    "ToolChoice",
    "ToolChoiceFunction",
    "ToolChoiceMCP",
    "Tracing",
    "TracingConfiguration",
    "Transcription",
    "TranscriptionAudioConfig",
    "TranscriptionAudioUpdate",
    "TranscriptionSessionConfig",
    "TranscriptionSessionUpdate",
    "TranscriptionUpdate",
    "Truncation",
    "TurnDetection",
    "TurnDetectionUpdate",
    "VoiceValue",
]


# --- Audio formats: a union on ``type`` (RealtimeAudioFormats) ---------------


class PcmFormat(Wire, tag_field="type", tag="audio/pcm", kw_only=True):
    """PCM16 little-endian mono. "Only a 24kHz sample rate is supported.\""""

    # The hosted API requires ``rate`` [WIRE 72] and checks it as a range
    # (``Expected a value >= 24000`` [WIRE 86]); the spec's enum is [24000].
    rate: Annotated[int, Meta(ge=24000, le=24000)]


class PcmuFormat(Wire, tag_field="type", tag="audio/pcmu", kw_only=True):
    """G.711 μ-law, 8 kHz."""


class PcmaFormat(Wire, tag_field="type", tag="audio/pcma", kw_only=True):
    """G.711 A-law, 8 kHz."""


AudioFormat = PcmFormat | PcmuFormat | PcmaFormat


# --- Voice ----------------------------------------------------------------------


class CustomVoice(Wire, kw_only=True):
    """A custom voice, given by id (``{"id": "voice_1234"}``)."""

    id: str


VoiceValue = Voice | CustomVoice


# --- Transcription and noise reduction -----------------------------------------


class TranscriptionUpdate(Wire, kw_only=True):
    """``audio.input.transcription`` as sent by a client (AudioTranscription)."""

    model: str | UnsetType = UNSET
    language: str | None | UnsetType = UNSET
    languages: Annotated[list[str], Meta(min_length=1)] | UnsetType = UNSET
    keywords: list[str] | UnsetType = UNSET
    prompt: str | None | UnsetType = UNSET
    delay: TranscriptionDelay | UnsetType = UNSET


class Transcription(Wire, frozen=True, kw_only=True):
    """Effective input transcription settings.

    The hosted API adds ``language: null`` and ``prompt: null`` once a model is
    set [WIRE 41]; the rarer fields are sent only when a client set them.
    """

    model: str
    language: str | None = None
    prompt: str | None = None
    languages: list[str] | UnsetType = UNSET
    keywords: list[str] | UnsetType = UNSET
    delay: TranscriptionDelay | UnsetType = UNSET


class NoiseReductionUpdate(Wire, kw_only=True):
    """``audio.input.noise_reduction`` as sent by a client."""

    type: NoiseReductionType | UnsetType = UNSET


class NoiseReduction(Wire, frozen=True, kw_only=True):
    """Effective noise reduction setting."""

    type: NoiseReductionType


# --- Turn detection: a union on ``type`` (RealtimeTurnDetection) ---------------

Threshold = Annotated[float, Meta(ge=0.0, le=1.0)]
Milliseconds = Annotated[int, Meta(ge=0)]
IdleTimeoutMs = Annotated[int, Meta(ge=5000, le=30000)]


class TurnDetectionUpdate(Wire, kw_only=True):
    """``audio.input.turn_detection`` as sent by a client.

    One struct for both variants, because a partial update may omit ``type``
    ("a threshold-only ``turn_detection`` keeps its ``silence_duration_ms``").
    Which keys belong to which variant is checked when the update is merged:
    under ``semantic_vad`` the server_vad keys are unknown parameters [WIRE 93].
    """

    type: Literal["server_vad", "semantic_vad"] | UnsetType = UNSET
    threshold: Threshold | UnsetType = UNSET
    prefix_padding_ms: Milliseconds | UnsetType = UNSET
    silence_duration_ms: Milliseconds | UnsetType = UNSET
    idle_timeout_ms: IdleTimeoutMs | None | UnsetType = UNSET
    eagerness: Eagerness | UnsetType = UNSET
    create_response: bool | UnsetType = UNSET
    interrupt_response: bool | UnsetType = UNSET


class ServerVad(Wire, frozen=True, tag_field="type", tag="server_vad", kw_only=True):
    """Effective server VAD settings.

    Transcription sessions show only the first three settings [WIRE 34], so the
    last three are ``UNSET`` (not sent) until a client sets them.
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 200
    idle_timeout_ms: int | None | UnsetType = UNSET
    create_response: bool | UnsetType = UNSET
    interrupt_response: bool | UnsetType = UNSET


class SemanticVad(
    Wire, frozen=True, tag_field="type", tag="semantic_vad", kw_only=True
):
    """Effective semantic VAD settings."""

    eagerness: Eagerness = "auto"
    create_response: bool | UnsetType = UNSET
    interrupt_response: bool | UnsetType = UNSET


TurnDetection = ServerVad | SemanticVad

#: The keys each turn detection variant accepts, besides ``type``.
TURN_DETECTION_KEYS: dict[str, frozenset[str]] = {
    "server_vad": frozenset(
        {
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "idle_timeout_ms",
            "create_response",
            "interrupt_response",
        }
    ),
    "semantic_vad": frozenset({"eagerness", "create_response", "interrupt_response"}),
}


# --- Audio input / output ------------------------------------------------------


class AudioInputUpdate(Wire, kw_only=True):
    """``audio.input`` as sent by a client."""

    format: AudioFormat | UnsetType = UNSET
    transcription: TranscriptionUpdate | None | UnsetType = UNSET
    noise_reduction: NoiseReductionUpdate | None | UnsetType = UNSET
    turn_detection: TurnDetectionUpdate | None | UnsetType = UNSET


class AudioOutputUpdate(Wire, kw_only=True):
    """``audio.output`` as sent by a client."""

    format: AudioFormat | UnsetType = UNSET
    voice: VoiceValue | UnsetType = UNSET
    speed: Annotated[float, Meta(ge=0.25, le=1.5)] | UnsetType = UNSET


class RealtimeAudioUpdate(Wire, kw_only=True):
    """``audio`` of a realtime session update."""

    input: AudioInputUpdate | UnsetType = UNSET
    output: AudioOutputUpdate | UnsetType = UNSET


class TranscriptionAudioUpdate(Wire, kw_only=True):
    """``audio`` of a transcription session update (input only)."""

    input: AudioInputUpdate | UnsetType = UNSET


class AudioInputConfig(Wire, frozen=True, kw_only=True):
    """Effective ``audio.input``."""

    format: AudioFormat
    transcription: Transcription | None
    noise_reduction: NoiseReduction | None
    turn_detection: TurnDetection | None


class AudioOutputConfig(Wire, frozen=True, kw_only=True):
    """Effective ``audio.output``."""

    format: AudioFormat
    voice: VoiceValue
    speed: float


class RealtimeAudioConfig(Wire, frozen=True, kw_only=True):
    """Effective ``audio`` of a realtime session."""

    input: AudioInputConfig
    output: AudioOutputConfig


class TranscriptionAudioConfig(Wire, frozen=True, kw_only=True):
    """Effective ``audio`` of a transcription session."""

    input: AudioInputConfig


# --- Tools and tool choice -----------------------------------------------------

#: What a function name may be (OpenAI's pattern; 64 characters at most).
FUNCTION_NAME_PATTERN = "^[a-zA-Z0-9_-]+$"


def is_function_name(name: str) -> bool:
    """Whether ``name`` matches :data:`FUNCTION_NAME_PATTERN` in full.

    Three string methods in C instead of msgspec's ``Meta(pattern=...)``, which
    calls ``re.search`` for every decoded tool (0.76 against 0.60 µs to decode
    the benchmark's tool). Stricter than that ``re.search`` in one case: its
    ``$`` also matches before a trailing newline, so ``"f\\n"`` passed.
    """
    return name.isascii() and name.replace("_", "a").replace("-", "a").isalnum()


class FunctionTool(Wire, frozen=True, tag_field="type", tag="function", kw_only=True):
    """A function the model may call (RealtimeFunctionTool)."""

    # OpenAI's function names: "^[a-zA-Z0-9_-]+$", at most 64 characters. The
    # pattern is checked by __post_init__; codec.explain reads it (and the
    # check) from ``extra`` to word the hosted error.
    name: Annotated[
        str,
        Meta(
            max_length=64,
            extra={"pattern": FUNCTION_NAME_PATTERN, "check": is_function_name},
            extra_json_schema={"pattern": FUNCTION_NAME_PATTERN},
        ),
    ]
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if not is_function_name(self.name):
            raise ValueError("function name does not match its pattern")


class MCPToolFilter(Wire, frozen=True, kw_only=True):
    """A filter object naming MCP tools."""

    tool_names: list[str] | UnsetType = UNSET
    read_only: bool | UnsetType = UNSET


class MCPToolRequireApproval(Wire, frozen=True, kw_only=True):
    """Per-tool approval policy of an MCP server."""

    always: MCPToolFilter | UnsetType = UNSET
    never: MCPToolFilter | UnsetType = UNSET


class MCPTool(Wire, frozen=True, tag_field="type", tag="mcp", kw_only=True):
    """A remote MCP server the model may use (MCPTool)."""

    server_label: str
    server_url: str | UnsetType = UNSET
    connector_id: (
        Literal[
            "connector_dropbox",
            "connector_gmail",
            "connector_googlecalendar",
            "connector_googledrive",
            "connector_microsoftteams",
            "connector_outlookcalendar",
            "connector_outlookemail",
            "connector_sharepoint",
        ]
        | UnsetType
    ) = UNSET
    tunnel_id: str | UnsetType = UNSET
    authorization: str | UnsetType = UNSET
    server_description: str | UnsetType = UNSET
    headers: dict[str, Any] | None | UnsetType = UNSET
    allowed_tools: list[str] | MCPToolFilter | None | UnsetType = UNSET
    allowed_callers: (
        Annotated[list[Literal["direct", "programmatic"]], Meta(min_length=1)]
        | None
        | UnsetType
    ) = UNSET
    require_approval: (
        MCPToolRequireApproval | Literal["always", "never"] | None | UnsetType
    ) = UNSET
    defer_loading: bool | UnsetType = UNSET


Tool = FunctionTool | MCPTool


class ToolChoiceFunction(
    Wire, frozen=True, tag_field="type", tag="function", kw_only=True
):
    """Force a call of the named function."""

    name: str


class ToolChoiceMCP(Wire, frozen=True, tag_field="type", tag="mcp", kw_only=True):
    """Force a call of a tool on the named MCP server."""

    server_label: str
    name: str | None | UnsetType = UNSET


ToolChoice = ToolChoiceMode | ToolChoiceFunction | ToolChoiceMCP


# --- Tracing, truncation, prompt, reasoning ------------------------------------


class TracingConfiguration(Wire, frozen=True, kw_only=True):
    """Granular tracing configuration."""

    workflow_name: str | UnsetType = UNSET
    group_id: str | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET


Tracing = Literal["auto"] | TracingConfiguration


class TokenLimits(Wire, frozen=True, kw_only=True):
    """Custom token limits of a truncation strategy."""

    post_instructions: Annotated[int, Meta(ge=0)] | UnsetType = UNSET


class RetentionRatioTruncation(
    Wire, frozen=True, tag_field="type", tag="retention_ratio", kw_only=True
):
    """Keep a fraction of the conversation when it overflows."""

    retention_ratio: Annotated[float, Meta(ge=0.0, le=1.0)]
    token_limits: TokenLimits | UnsetType = UNSET


Truncation = TruncationMode | RetentionRatioTruncation


class Prompt(Wire, frozen=True, kw_only=True):
    """A reference to a stored prompt template."""

    id: str
    version: str | None | UnsetType = UNSET
    variables: dict[str, Any] | None | UnsetType = UNSET


class Reasoning(Wire, frozen=True, kw_only=True):
    """Reasoning settings (reasoning models only)."""

    effort: ReasoningEffort | UnsetType = UNSET


MaxOutputTokens = Annotated[int, Meta(ge=1, le=4096)] | Literal["inf"]


# --- Whole sessions ------------------------------------------------------------


class RealtimeSessionUpdate(Wire, tag_field="type", tag="realtime", kw_only=True):
    """A realtime session as sent by a client (RealtimeSessionCreateRequestGA)."""

    output_modalities: list[Modality] | UnsetType = UNSET
    model: str | UnsetType = UNSET
    instructions: str | UnsetType = UNSET
    audio: RealtimeAudioUpdate | UnsetType = UNSET
    include: list[Include] | None | UnsetType = UNSET
    tracing: Tracing | None | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    reasoning: Reasoning | UnsetType = UNSET
    max_output_tokens: MaxOutputTokens | UnsetType = UNSET
    truncation: Truncation | UnsetType = UNSET
    prompt: Prompt | None | UnsetType = UNSET


class TranscriptionSessionUpdate(
    Wire, tag_field="type", tag="transcription", kw_only=True
):
    """A transcription session as sent by a client
    (RealtimeTranscriptionSessionCreateRequestGA)."""

    audio: TranscriptionAudioUpdate | UnsetType = UNSET
    include: list[Include] | None | UnsetType = UNSET


SessionUpdate = RealtimeSessionUpdate | TranscriptionSessionUpdate


class RealtimeSessionConfig(
    Wire, frozen=True, tag_field="type", tag="realtime", kw_only=True
):
    """The effective configuration of a realtime session
    (RealtimeSessionCreateResponseGA), in the hosted API's key order."""

    object: Literal["realtime.session"] = "realtime.session"
    id: str
    model: str
    output_modalities: list[Modality]
    instructions: str
    tools: list[Tool]
    tool_choice: ToolChoice
    max_output_tokens: MaxOutputTokens
    tracing: Tracing | None
    truncation: Truncation
    prompt: Prompt | None
    expires_at: int
    audio: RealtimeAudioConfig
    include: list[Include] | None
    # Only sent once a client sets them (reasoning models).
    reasoning: Reasoning | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET


class TranscriptionSessionConfig(
    Wire, frozen=True, tag_field="type", tag="transcription", kw_only=True
):
    """The effective configuration of a transcription session
    (RealtimeTranscriptionSessionCreateResponseGA)."""

    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    id: str
    expires_at: int
    audio: TranscriptionAudioConfig
    include: list[Include] | None


SessionConfig = RealtimeSessionConfig | TranscriptionSessionConfig
