"""The responder protocol: what produces a response's content.

A responder gets a :class:`~openrealtime.session.ResponseRequest` (the
conversation, the effective instructions, tools, tool choice, modalities,
voice and limits) and yields chunks. It knows nothing of events: the driver
feeds each chunk to the engine, which emits the hosted event sequence.
Cancelling is closing the iterator (``aclose``), which the driver does when
the client cancels or a new turn interrupts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from openrealtime import audio
from openrealtime.models.responses import ResponseStatusError
from openrealtime.session import ResponseRequest, Session


__all__ = [
    "AudioChunk",
    "Chunk",
    "FunctionCallChunk",
    "Responder",
    "ResponderError",
    "StopChunk",
    "TextChunk",
    "apply_chunk",
    "failure",
    "spoken_as_tone",
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


@dataclass(frozen=True, slots=True)
class StopChunk:
    """The responder stopped early: the response ends ``incomplete``.

    A chat model's ``finish_reason: "length"`` is ``max_output_tokens``,
    ``"content_filter"`` is ``content_filter``.
    """

    reason: Literal["max_output_tokens", "content_filter"]


Chunk = TextChunk | AudioChunk | FunctionCallChunk | StopChunk


class ResponderError(RuntimeError):
    """A responder cannot produce the response, for a reason the client may know.

    The response ends ``failed`` with ``status_details.error``: ``type``,
    ``code`` and ``client_message`` (by default the exception's message;
    give ``client_message`` to keep details such as URLs in the log only).
    Other exceptions give a generic ``server_error``.
    """

    type = "server_error"
    code = "responder_failed"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        client_message: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.client_message = client_message if client_message is not None else message


def failure(exc: BaseException) -> ResponseStatusError:
    """The ``status_details.error`` of a response whose responder raised ``exc``."""
    if isinstance(exc, ResponderError):
        return ResponseStatusError(
            type=exc.type, code=exc.code, message=exc.client_message
        )
    if type(exc).__name__ == "SynthesisError":  # openrealtime.voice.tts
        return ResponseStatusError(
            type="server_error",
            code="speech_unavailable",
            message=f"The speech engine failed: {exc}",
        )
    return ResponseStatusError(
        type="server_error",
        code="responder_failed",
        message="The server failed to produce this response.",
    )


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
        case StopChunk(reason=reason):
            session.response_done(response_id, status="incomplete", reason=reason)


#: Audio of the built-in responders' placeholder speech, per chunk.
_TONE_CHUNK_MS = 100
_WORD = re.compile(r"\S+\s*")


def spoken_as_tone(
    text: str, ms: int, kind: Literal["tone", "silence"] = "tone"
) -> Iterator[TextChunk | AudioChunk]:
    """Placeholder speech: ``ms`` of tone in 100 ms chunks, with its transcript.

    The words of ``text`` are spread evenly over the audio, each sent just
    before the chunk in which it starts, so transcript and audio move
    together: a cancel or a truncation keeps what was heard. Leading
    whitespace goes with the first word.
    """
    words = [m.group() for m in _WORD.finditer(text)]
    if words and text[: len(text) - len(text.lstrip())]:
        words[0] = text[: len(text) - len(text.lstrip())] + words[0]
    sent = 0
    for start in range(0, ms, _TONE_CHUNK_MS):
        end = min(start + _TONE_CHUNK_MS, ms)
        # The words that start before this chunk ends.
        due = len(words) if end >= ms else -(-len(words) * end // ms)
        if due > sent:
            yield TextChunk("".join(words[sent:due]))
            sent = due
        length = end - start
        pcm = (
            audio.tone(length, 24000, 440.0)
            if kind == "tone"
            else audio.silence(length, 24000)
        )
        yield AudioChunk(pcm)
