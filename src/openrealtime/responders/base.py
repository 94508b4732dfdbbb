"""The responder protocol: what produces a response's content.

A responder gets a :class:`~openrealtime.session.ResponseRequest` (the
conversation, the effective instructions, tools, tool choice, modalities,
voice and limits) and yields chunks. It knows nothing of events: the driver
feeds each chunk to the engine, which emits the hosted event sequence.
Cancelling is closing the iterator (``aclose``), which the driver does when
the client cancels or a new turn interrupts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from openrealtime.session import ResponseRequest, Session


__all__ = [
    "AudioChunk",
    "Chunk",
    "FunctionCallChunk",
    "Responder",
    "TextChunk",
    "apply_chunk",
]


@dataclass(frozen=True, slots=True)
class TextChunk:
    """Text (in audio modality, the transcript of what is said)."""

    text: str


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Speech, PCM16 mono at ``rate``; converted to the session's format."""

    pcm16: bytes
    rate: int = 24000


@dataclass(frozen=True, slots=True)
class FunctionCallChunk:
    """A call of one of the request's function tools."""

    name: str
    arguments: str
    call_id: str | None = None


Chunk = TextChunk | AudioChunk | FunctionCallChunk


class Responder(Protocol):
    """Produces the content of responses."""

    def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Yield the chunks of one response, in order."""
        ...


def apply_chunk(session: Session, response_id: str, chunk: Chunk) -> None:
    """Report one chunk to the engine."""
    match chunk:
        case TextChunk(text=text):
            session.response_text(response_id, text)
        case AudioChunk(pcm16=pcm16, rate=rate):
            session.response_audio(response_id, pcm16, rate)
        case FunctionCallChunk(name=name, arguments=arguments, call_id=call_id):
            session.response_function_call(
                response_id, name, arguments, call_id=call_id
            )
