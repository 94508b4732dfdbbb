"""Responders: what produces the content of responses."""

from __future__ import annotations

from openrealtime.responders.base import (
    AudioChunk,
    Chunk,
    FunctionCallChunk,
    Responder,
    TextChunk,
    apply_chunk,
)


__all__ = [
    "AudioChunk",
    "Chunk",
    "FunctionCallChunk",
    "Responder",
    "TextChunk",
    "apply_chunk",
]
