"""Early transcription: decode a turn when the user falls silent, before VAD commits it.

Server VAD commits a turn only after ``silence_duration_ms`` of silence (200
to 500 ms), and the transcript, which the response waits for, used to start
only then. Whisper's cost per utterance is nearly fixed (its encoder always
reads a window of at least 15 s, see
:mod:`openrealtime.voice.whisper`), so the fastest transcript is one whose decode starts
the moment the user stops speaking.

:class:`EarlyTranscription` watches a session after each appended chunk
(:meth:`observe`). When the last :data:`QUIET_MS` of the speech in progress
are more than :data:`QUIET_DB` below its loudest 10 ms, it starts decoding
the speech so far on a worker thread. When the turn is committed
(:meth:`take`), the early decode is used if it covers the committed audio:
same item, same transcription settings, and whatever differs between the two
(more speech, or the trailing silence) is quiet too. Otherwise the normal
decode runs, and the early one was only CPU spent. One early decode runs per
session at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from openrealtime.voice.asr import run_transcriber
from openrealtime.voice.transcribe import iterate_in_thread


if TYPE_CHECKING:
    from openrealtime.models.session import Transcription
    from openrealtime.session import Session, Transcribe


__all__ = ["EarlyTranscription", "QUIET_DB", "QUIET_MS"]

logger = logging.getLogger("openrealtime.server")

#: Trailing audio that must be quiet before an early decode starts.
QUIET_MS: Final = 80
#: How far below the turn's loudest 10 ms "quiet" is.
QUIET_DB: Final = 25.0
# Ignore the first moments of a turn: nothing worth decoding yet.
_MIN_SPEECH_MS: Final = 300


@dataclass
class _Early:
    item_id: str
    settings: Transcription
    pcm: bytes
    rate: int
    task: asyncio.Task[list[str]]
    logprobs: bool = False


def _frame_levels(pcm: bytes, rate: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    hop = max(rate // 100, 1)
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2")
    n = x.size // hop
    if n == 0:
        return np.zeros(0)
    frames = x[: n * hop].astype(np.float64).reshape(n, hop)
    levels: np.ndarray[Any, np.dtype[np.float64]] = np.sqrt(
        np.mean(frames * frames, axis=1)
    )
    return levels


class EarlyTranscription:
    """Starts a session's transcription at the first silence of a turn.

    Args:
        transcriber: The server's recognizer (a router's ``for_model`` is used).
        decode: runs one decode, ``decode(engine, pcm, rate, settings,
            logprobs)`` (the server's voice pool); ``None``: on the loop's
            default executor threads.
    """

    def __init__(
        self,
        transcriber: Any,
        decode: Callable[[Any, bytes, int, Transcription, bool], Awaitable[list[str]]]
        | None = None,
    ) -> None:
        self._transcriber = transcriber
        self._decode = decode
        self._item: str | None = None
        self._peak = 0.0
        self._early: _Early | None = None
        self._ratio = 10 ** (-QUIET_DB / 20)

    def observe(self, session: Session) -> None:
        """Look at the turn in progress after an append; maybe start decoding."""
        item_id = session.speech_item_id
        settings = session.config.audio.input.transcription
        if item_id is None or settings is None:
            return
        if item_id != self._item:
            self._item, self._peak = item_id, 0.0
        tail, rate = session.speech_audio(QUIET_MS)
        levels = _frame_levels(tail, rate)
        if levels.size == 0:
            return
        self._peak = max(self._peak, float(levels.max()))
        if float(levels.max()) > self._peak * self._ratio:
            return  # still speaking
        early = self._early
        if early is not None and early.item_id == item_id and not early.task.done():
            return  # one at a time
        pcm, rate = session.speech_audio()
        if len(pcm) < rate * 2 * _MIN_SPEECH_MS // 1000:
            return
        if (
            early is not None
            and early.item_id == item_id
            and early.pcm == pcm[: len(early.pcm)]
        ):
            # Only silence since the last early decode: it still holds.
            if self._quiet(pcm[len(early.pcm) :], rate):
                return
        include = session.config.include or ()
        logprobs = "item.input_audio_transcription.logprobs" in include
        self._start(item_id, settings, pcm, rate, logprobs)

    def _start(
        self,
        item_id: str,
        settings: Transcription,
        pcm: bytes,
        rate: int,
        logprobs: bool = False,
    ) -> None:
        self.discard()
        transcriber = self._transcriber
        select = getattr(transcriber, "for_model", None)
        engine = transcriber if select is None else select(settings.model)

        def make() -> Iterator[str]:
            return run_transcriber(
                engine,
                pcm,
                rate,
                language=settings.language,
                prompt=settings.prompt,
                logprobs=logprobs,
            )

        async def run() -> list[str]:
            if self._decode is not None:
                return await self._decode(engine, pcm, rate, settings, logprobs)
            async with contextlib.aclosing(iterate_in_thread(make)) as stream:
                return [delta async for delta in stream]

        task = asyncio.get_running_loop().create_task(run())
        # A failure is the normal decode's to report; here it is only logged.
        task.add_done_callback(_retrieve)
        self._early = _Early(item_id, settings, pcm, rate, task, logprobs)

    def _quiet(self, pcm: bytes, rate: int) -> bool:
        levels = _frame_levels(pcm, rate)
        return levels.size == 0 or float(levels.max()) <= self._peak * self._ratio

    def take(
        self, action: Transcribe, *, logprobs: bool = False
    ) -> asyncio.Task[list[str]] | None:
        """The early decode of a committed turn, if it covers it (else None).

        ``logprobs``: whether the session wants them now (an early decode
        made without them does not serve a turn that wants them).
        """
        early, self._early = self._early, None
        if early is None:
            return None
        same = (
            early.item_id == action.item_id
            and early.settings == action.transcription
            and early.rate == action.rate
            and early.logprobs >= logprobs
        )
        if same:
            short, long = sorted((early.pcm, action.pcm16), key=len)
            if long[: len(short)] == short and self._quiet(
                long[len(short) :], early.rate
            ):
                return early.task
        early.task.cancel()
        return None

    def discard(self) -> None:
        """Cancel the early decode in flight, if any."""
        if self._early is not None:
            self._early.task.cancel()
            self._early = None


def _retrieve(task: asyncio.Task[list[str]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("early transcription failed: %r", task.exception())
