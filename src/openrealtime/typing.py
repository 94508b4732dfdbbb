"""Shared type aliases: the spec's enums as ``Literal`` types.

Values and their order come from ``openai-realtime.openapi.json``; the order
matters because error messages list supported values in this order.
"""

from __future__ import annotations

from typing import Literal


__all__ = [
    "AudioFormatType",
    "Eagerness",
    "FileDetail",
    "ImageDetail",
    "Include",
    "ItemStatus",
    "Modality",
    "NoiseReductionType",
    "ReasoningEffort",
    "ResponseStatus",
    "Role",
    "ToolChoiceMode",
    "TranscriptionDelay",
    "TruncationMode",
    "Voice",
]

Voice = Literal[
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
]
"""Built-in voices (``VoiceIdsShared``)."""

AudioFormatType = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
Modality = Literal["text", "audio"]
Include = Literal["item.input_audio_transcription.logprobs"]
NoiseReductionType = Literal["near_field", "far_field"]
Eagerness = Literal["low", "medium", "high", "auto"]
ToolChoiceMode = Literal["none", "auto", "required"]
TruncationMode = Literal["auto", "disabled"]
ReasoningEffort = Literal["minimal", "low", "medium", "high", "xhigh"]
TranscriptionDelay = Literal["minimal", "low", "medium", "high", "xhigh"]
ItemStatus = Literal["completed", "incomplete", "in_progress"]
Role = Literal["user", "assistant", "system"]
ResponseStatus = Literal[
    "completed", "cancelled", "failed", "incomplete", "in_progress"
]
ImageDetail = Literal["auto", "low", "high"]
FileDetail = Literal["auto", "low", "high"]
