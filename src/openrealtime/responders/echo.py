"""The ``echo`` responder: says back what the user last said.

Text comes back as text. In audio modality the reply's audio is a tone as
long as the user's last audio turn (or about 60 ms a character of text when
the user typed), in 100 ms chunks, so clients can test playback, truncation
and barge-in with no speech engine at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from openrealtime import audio
from openrealtime.models.items import (
    InputAudioPart,
    InputTextPart,
    MessageItem,
)
from openrealtime.responders.base import AudioChunk, Chunk, TextChunk
from openrealtime.session import ResponseRequest


__all__ = ["EchoResponder", "last_user_turn"]

_CHUNK_MS = 100


def last_user_turn(request: ResponseRequest) -> tuple[str, int]:
    """The text of the last user message and its audio length in ms.

    Audio parts count by their transcript; the length is estimated from the
    committed audio only when the engine recorded it (``0`` otherwise).
    """
    for item in reversed(request.conversation):
        if isinstance(item, MessageItem) and item.role == "user":
            texts: list[str] = []
            for part in item.content:
                if isinstance(part, InputTextPart):
                    texts.append(part.text)
                elif isinstance(part, InputAudioPart) and isinstance(
                    part.transcript, str
                ):
                    texts.append(part.transcript)
            return " ".join(t for t in texts if t), 0
    return "", 0


def _spoke_without_transcript(request: ResponseRequest) -> bool:
    for item in reversed(request.conversation):
        if isinstance(item, MessageItem) and item.role == "user":
            return any(
                isinstance(part, InputAudioPart) and not part.transcript
                for part in item.content
            )
    return False


class EchoResponder:
    """Repeats the user's words; speaks them as a tone.

    Args:
        chunk_delay: seconds to wait between audio chunks (0 streams at once).
    """

    def __init__(self, *, chunk_delay: float = 0.0) -> None:
        self.chunk_delay = chunk_delay

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Yield the echo of the last user turn."""
        text, audio_ms = last_user_turn(request)
        if not text and _spoke_without_transcript(request):
            # Audio with input transcription off: nothing to repeat, but say so.
            text = "I heard you, but transcription is off."
        if text:
            yield TextChunk(text)
        if request.output_modalities != ["audio"]:
            return
        ms = audio_ms or max(200, 60 * len(text))
        for start in range(0, ms, _CHUNK_MS):
            yield AudioChunk(audio.tone(min(_CHUNK_MS, ms - start), 24000, 440.0))
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
