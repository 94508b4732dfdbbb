"""The ``echo`` responder: says back what the user last said.

Text comes back as text. In audio modality the reply's audio is a tone of
about 60 ms a character of the reply (at least 200 ms), in 100 ms chunks, so
clients can test playback, truncation and barge-in with no speech engine.
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


def last_user_turn(request: ResponseRequest) -> tuple[str, bool]:
    """The text of the last user message, and whether it had untranscribed audio.

    Audio parts count by their transcript.
    """
    for item in reversed(request.conversation):
        if isinstance(item, MessageItem) and item.role == "user":
            texts: list[str] = []
            untranscribed = False
            for part in item.content:
                if isinstance(part, InputTextPart):
                    texts.append(part.text)
                elif isinstance(part, InputAudioPart):
                    if part.transcript:
                        texts.append(part.transcript)
                    else:
                        untranscribed = True
            return " ".join(t for t in texts if t), untranscribed
    return "", False


class EchoResponder:
    """Repeats the user's words; speaks them as a tone.

    Args:
        chunk_delay: seconds to wait between audio chunks (0 streams at once).
    """

    def __init__(self, *, chunk_delay: float = 0.0) -> None:
        self.chunk_delay = chunk_delay

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Yield the echo of the last user turn."""
        text, untranscribed = last_user_turn(request)
        if not text and untranscribed:
            # Audio with input transcription off: nothing to repeat, but say so.
            text = "I heard you, but transcription is off."
        if text:
            yield TextChunk(text)
        if request.output_modalities != ["audio"]:
            return
        ms = max(200, 60 * len(text))
        for start in range(0, ms, _CHUNK_MS):
            yield AudioChunk(audio.tone(min(_CHUNK_MS, ms - start), 24000, 440.0))
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
