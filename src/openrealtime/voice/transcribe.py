"""Input audio transcription for the server driver, off the event loop.

:func:`transcribe_action` runs a synchronous
:class:`~openrealtime.voice.asr.Transcriber` on a worker thread and yields its
deltas to the event loop as they come, so a long decode never stalls other
sessions. :func:`iterate_in_thread` is the general tool underneath, also
used to stream speech synthesis.

Which engine serves which ``audio.input.transcription.model``
--------------------------------------------------------------
Clients name hosted models; :data:`TRANSCRIPTION_ENGINES` says which local
engine stands in for each: Whisper (:mod:`openrealtime.voice.whisper`) for
all of them. A server serves them with its configured recognizer
(``--transcription``; see :class:`openrealtime.voice.engines.TranscriberRouter`),
and names not in the table (the spec lets ``model`` be any string) go to
the same one unless they name an installed engine (``pocketsphinx``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Final, TypeVar, cast

from openrealtime.voice.asr import Transcriber


__all__ = [
    "DEFAULT_TRANSCRIPTION_ENGINE",
    "TRANSCRIPTION_ENGINES",
    "iterate_in_thread",
    "transcribe_action",
    "transcription_engine",
]

T = TypeVar("T")

#: Engine used for a model name that is not in :data:`TRANSCRIPTION_ENGINES`.
DEFAULT_TRANSCRIPTION_ENGINE: Final = "whisper"

#: The engine that serves each hosted transcription model name (all the
#: names the spec lists for ``audio.input.transcription.model``).
TRANSCRIPTION_ENGINES: Final[dict[str, str]] = {
    "whisper-1": "whisper",
    "gpt-transcribe": "whisper",
    "gpt-live-transcribe": "whisper",
    "gpt-4o-mini-transcribe": "whisper",
    "gpt-4o-mini-transcribe-2025-12-15": "whisper",
    "gpt-4o-transcribe": "whisper",
    "gpt-4o-transcribe-diarize": "whisper",
    "gpt-realtime-whisper": "whisper",
}

_DONE: Final = object()


def transcription_engine(model: str) -> str:
    """Return the engine that serves a transcription model name.

    Args:
        model: The client's ``audio.input.transcription.model``.

    Returns:
        An engine name from :data:`TRANSCRIPTION_ENGINES`, or
        :data:`DEFAULT_TRANSCRIPTION_ENGINE` for names it does not list.
    """
    return TRANSCRIPTION_ENGINES.get(model, DEFAULT_TRANSCRIPTION_ENGINE)


async def iterate_in_thread(
    make: Callable[[], Iterator[T]],
    *,
    executor: Executor | None = None,
) -> AsyncGenerator[T, None]:
    """Iterate a blocking iterator on worker threads, one step at a time.

    ``make()`` and every ``next()`` run in the default executor, never on
    the event loop. When the consumer stops early (``aclose``, ``break``,
    task cancellation), the step in flight is allowed to finish, then the
    iterator's ``close()`` is called, so a generator's cleanup (killing a
    subprocess, say) always runs, and never while another thread is inside
    it.

    Args:
        make: Builds the iterator; exceptions it raises propagate.
        executor: Where the steps run; None is the loop's default executor
            (a few threads shared with ``asyncio.to_thread``: give long
            decodes or many sessions an executor of their own).

    Yields:
        The iterator's items, in order.
    """
    loop = asyncio.get_running_loop()
    iterator = await loop.run_in_executor(executor, make)
    step: asyncio.Future[object] | None = None
    try:
        while True:
            step = loop.run_in_executor(executor, next, iterator, _DONE)
            # The shield keeps a cancellation from marking the step done
            # while its thread still runs; ``finally`` waits for it instead.
            item = await asyncio.shield(step)
            step = None
            if item is _DONE:
                return
            yield cast(T, item)
    finally:
        if step is not None:
            await asyncio.wait([step])
            if not step.cancelled():
                # Retrieved so a failing step is not logged as unhandled.
                step.exception()
        close = getattr(iterator, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


async def transcribe_action(
    transcriber: Transcriber,
    pcm16: bytes,
    rate: int,
    *,
    language: str | None,
    prompt: str | None,
    executor: Executor | None = None,
) -> AsyncIterator[str]:
    """Transcribe one utterance off the event loop, yielding text deltas.

    Args:
        transcriber: A synchronous transcriber (e.g. PocketSphinx).
        pcm16: PCM16 little-endian mono audio.
        rate: Its sample rate in Hz.
        language: ISO-639-1 code, or None for the transcriber's default.
        prompt: Free-text hint; the transcriber may ignore it.
        executor: Where to run it (see :func:`iterate_in_thread`).

    Yields:
        Deltas whose concatenation is the transcript.

    Raises:
        UnsupportedLanguage: The transcriber has no model for ``language``
            (raised before any delta).
    """

    def make() -> Iterator[str]:
        return transcriber.transcribe(pcm16, rate, language=language, prompt=prompt)

    async for delta in iterate_in_thread(make, executor=executor):
        yield delta
