"""Pacing: responders' audio streams at a multiple of real time.

A real model streams its audio over time, so a client can cancel, truncate
or barge in while a reply is still coming. The built-in responders make
their audio at once; :class:`PacedResponder` holds each audio chunk back
until ``pace`` times real time has passed since the first one:

* ``pace=1``: real time (a 2 s reply takes 2 s to stream);
* ``pace=2``: twice as fast; ``pace=0.5``: half as fast;
* ``pace=0``: as fast as possible (no waiting), for tests.

Text and function calls pass through at once; as responders send each
piece of transcript just before the audio that speaks it, the transcript
moves with the audio. A responder may carry its own ``pace`` attribute
(the scripted responder's fixture-level ``pace``), which wins when it is
not ``None``. Pacing never adds a delay before the first chunk, and a
responder slower than the pace (a speech engine) is not slowed further.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from openrealtime.responders.base import AudioChunk, Chunk, Responder
from openrealtime.session import ResponseRequest


__all__ = ["DEFAULT_PACE", "PacedResponder", "paced"]

#: The server's default: real time, so barge-in and truncation can be tested.
DEFAULT_PACE = 1.0


def _pace_of(responder: Responder, default: float) -> float:
    own = getattr(responder, "pace", None)
    return float(own) if isinstance(own, int | float) else default


class PacedResponder:
    """Streams an inner responder's audio at ``pace`` times real time.

    Args:
        inner: the responder.
        pace: multiple of real time (``0``: no pacing).
    """

    def __init__(self, inner: Responder, pace: float = DEFAULT_PACE) -> None:
        if pace < 0:
            raise ValueError(f"pace must be >= 0, not {pace}")
        self.inner = inner
        self.pace = _pace_of(inner, pace)

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Yield the inner responder's chunks, holding audio to the pace."""
        stream = self.inner.respond(request)
        pace = self.pace
        loop = asyncio.get_running_loop()
        start: float | None = None
        audio_s = 0.0  # audio yielded so far, in seconds
        try:
            async for chunk in stream:
                if pace and isinstance(chunk, AudioChunk):
                    now = loop.time()
                    if start is None:
                        start = now
                    delay = start + audio_s / pace - now
                    if delay > 0:
                        await asyncio.sleep(delay)
                    audio_s += len(chunk.pcm16) / 2 / chunk.rate
                yield chunk
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


def paced(responder: Responder, pace: float) -> Responder:
    """``responder`` paced, or itself when its effective pace is 0."""
    if _pace_of(responder, pace) == 0:
        return responder
    return PacedResponder(responder, pace)
