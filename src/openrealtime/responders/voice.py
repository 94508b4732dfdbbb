"""Speech for any responder: :class:`SpeakingResponder`.

Wraps a responder that produces text (echo, scripted, a chat model) and,
in audio modality, speaks that text with a
:class:`~openrealtime.voice.tts.Synthesizer` in the request's voice and
speed. The reply is spoken sentence by sentence as its text streams in, so
the first audio comes as soon as the first sentence is complete rather than
when the whole reply is.

How a response flows (audio modality)::

    inner responder --(reader task)--> queue --> respond()
        TextChunk          cut into sentences by SentenceSplitter; each
                           sentence's text (the transcript) is passed on
                           just before its audio, so transcript and audio
                           move together
        AudioChunk         dropped: the inner responder's tone is only a
                           placeholder for real speech
        FunctionCallChunk  passed through after the audio of the text
                           before it (what follows a call waits for it)

Each sentence is synthesized by the (blocking) synthesizer on worker
threads, one chunk at a time (:func:`~openrealtime.voice.transcribe.
iterate_in_thread`); while a sentence is being spoken, text that arrives is
read and split between its audio chunks. Between two pieces goes
the pause espeak-ng would have made inside one text (about 250 ms after a
sentence, 100 ms after a clause, longer when slower). Closing the generator
(``aclose``, task cancellation) closes the synthesizer's iterator, which
kills espeak-ng, and closes the inner responder.

In text modality everything passes through untouched.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Final

from openrealtime import audio
from openrealtime.responders.base import (
    AudioChunk,
    Chunk,
    FunctionCallChunk,
    Responder,
    StopChunk,
    TextChunk,
)
from openrealtime.session import ResponseRequest
from openrealtime.voice.transcribe import iterate_in_thread
from openrealtime.voice.tts import DEFAULT_VOICE, OUTPUT_RATE, Synthesizer


__all__ = ["SentenceSplitter", "SpeakingResponder"]

# A sentence ends at . ! ? or an ellipsis (ASCII or CJK full-width), maybe
# followed by closing quotes or brackets, then whitespace; or at a newline.
_SENTENCE_END: Final = re.compile(
    r"""(?:[.!?\u2026\u3002\uff01\uff1f]+["'\u201d\u2019)\]]*\s+|\n+)"""
)
# Where a long sentence may be cut: after a clause mark and a space.
_CLAUSE_END: Final = re.compile(r"[,;:\u2014]\s+")
# A piece that ends a sentence (rather than being cut at a clause).
_ENDS_SENTENCE: Final = re.compile(
    r"""[.!?\u2026\u3002\uff01\uff1f]["'\u201d\u2019)\]]*$"""
)
#: Silence put between two spoken pieces (ms at speed 1.0), as measured on
#: espeak-ng 1.51 between sentences and after a comma.
_SENTENCE_PAUSE_MS: Final = 250
_CLAUSE_PAUSE_MS: Final = 100
# Words whose final period rarely ends a sentence.
_ABBREVIATIONS: Final = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "e.g", "i.e", "no"}
)


class SentenceSplitter:
    """Cuts streamed text into pieces worth speaking on their own.

    A piece ends at a sentence end followed by whitespace (so ``3.14`` and
    ``Mr. Smith`` stay whole), or at a newline. A sentence longer than
    ``first_chars`` (for the first piece, so the first audio comes fast)
    or ``max_chars`` (later) is cut after its last clause mark (``,;:``),
    or at its last space once it is twice as long.

    Args:
        first_chars: Length from which the first piece may be cut early.
        max_chars: Length from which later pieces may be cut early.
    """

    def __init__(self, *, first_chars: int = 80, max_chars: int = 240) -> None:
        self.first_chars = first_chars
        self.max_chars = max_chars
        self._buffer = ""
        self._first = True

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the pieces it completed.

        Args:
            text: The next piece of the reply.

        Returns:
            Complete pieces, stripped, in order (often none).
        """
        self._buffer += text
        pieces: list[str] = []
        while (cut := self._cut()) is not None:
            piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
            if piece.strip():
                pieces.append(piece.strip())
                self._first = False
        return pieces

    def flush(self) -> str | None:
        """Return what is left (the end of the reply), if anything."""
        piece, self._buffer = self._buffer.strip(), ""
        if piece:
            self._first = False
        return piece or None

    def _cut(self) -> int | None:
        buffer = self._buffer
        for match in _SENTENCE_END.finditer(buffer):
            if match.group().startswith("\n") or not _abbreviation(
                buffer[: match.start() + 1]
            ):
                return match.end()
        limit = self.first_chars if self._first else self.max_chars
        if len(buffer) < limit:
            return None
        clauses = list(_CLAUSE_END.finditer(buffer))
        if clauses:
            return clauses[-1].end()
        if len(buffer) >= 2 * limit:
            space = buffer.rfind(" ")
            if space > 0:
                return space + 1
        return None


def _abbreviation(text: str) -> bool:
    """Whether ``text`` ends with an abbreviation's period (``Dr.``, ``J.``)."""
    if not text.endswith("."):
        return False
    word = text[:-1].rsplit(None, 1)[-1] if text[:-1].strip() else ""
    word = word.lstrip("\"'([\u201c\u2018")
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())


@dataclass(frozen=True, slots=True)
class _End:
    """The inner responder finished (``error`` set when it failed, ``stop``
    when it stopped early)."""

    error: Exception | None = None
    stop: StopChunk | None = None


_Event = TextChunk | FunctionCallChunk | _End


class SpeakingResponder:
    """Gives any responder a voice.

    Args:
        inner: The responder whose text is spoken.
        synthesizer: Turns text into PCM16 24 kHz audio (e.g.
            :class:`~openrealtime.voice.tts.EspeakSynthesizer`).
        first_chars: See :class:`SentenceSplitter`.
        max_chars: See :class:`SentenceSplitter`.
        executor: Where synthesis runs; None is the loop's default executor
            (see :func:`~openrealtime.voice.transcribe.iterate_in_thread`).
    """

    def __init__(
        self,
        inner: Responder,
        synthesizer: Synthesizer,
        *,
        first_chars: int = 80,
        max_chars: int = 240,
        executor: Executor | None = None,
    ) -> None:
        self.inner = inner
        self.executor = executor
        self.synthesizer = synthesizer
        self.first_chars = first_chars
        self.max_chars = max_chars

    @property
    def pace(self) -> float | None:
        """The inner responder's own pace, if it has one (see pacing)."""
        pace = getattr(self.inner, "pace", None)
        return pace if isinstance(pace, int | float) else None

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Yield the inner responder's chunks, spoken in audio modality.

        Args:
            request: What to respond to; ``voice`` (a custom ``{id}`` voice
                falls back to the default one) and ``speed`` shape the audio.

        Yields:
            Text and function calls as the inner responder gives them, and
            audio of the text (in audio modality).

        Raises:
            Exception: Whatever the inner responder or the synthesizer
                raises (e.g. ``SynthesisError``).
        """
        if request.output_modalities != ["audio"]:
            stream = self.inner.respond(request)
            try:
                async for chunk in stream:
                    yield chunk
            finally:
                await _aclose(stream)
            return

        voice = request.voice if isinstance(request.voice, str) else DEFAULT_VOICE
        events: asyncio.Queue[_Event] = asyncio.Queue()
        reader = asyncio.create_task(self._read(request, events))
        splitter = SentenceSplitter(
            first_chars=self.first_chars, max_chars=self.max_chars
        )
        # What is left to say or pass on, in order: sentences and calls.
        pending: deque[str | FunctionCallChunk] = deque()
        # The text received and not yet passed on, as received (the
        # sentences are stripped; the transcript keeps every character).
        unspoken = ""
        previous: str | None = None  # the last piece spoken
        ended = False

        stop: StopChunk | None = None
        # Events that came after a function call still waiting for the audio
        # before it: they must not overtake the call.
        held: deque[_Event] = deque()
        calls_waiting = 0

        def take(event: _Event) -> TextChunk | None:
            """Account for one event (text waits for its audio: None)."""
            nonlocal ended, calls_waiting, unspoken, stop
            if isinstance(event, _End) and event.error is not None:
                raise event.error
            if calls_waiting:
                held.append(event)
                return None
            if isinstance(event, TextChunk):
                pending.extend(splitter.feed(event.text))
                unspoken += event.text
                return None
            if (rest := splitter.flush()) is not None:
                pending.append(rest)
            if isinstance(event, FunctionCallChunk):
                pending.append(event)
                calls_waiting += 1
            else:
                ended = True
                stop = event.stop
            return None

        try:
            while True:
                if not pending and not ended:
                    if (text := take(await events.get())) is not None:
                        yield text
                while not events.empty():
                    if (text := take(events.get_nowait())) is not None:
                        yield text
                if not pending:
                    if ended:
                        if unspoken:  # trailing whitespace
                            yield TextChunk(unspoken)
                        if stop is not None:
                            yield stop
                        return
                    continue
                item = pending.popleft()
                if isinstance(item, FunctionCallChunk):
                    if unspoken:
                        yield TextChunk(unspoken)
                        unspoken = ""
                    yield item
                    calls_waiting -= 1
                    while held and not calls_waiting:
                        if (text := take(held.popleft())) is not None:
                            yield text
                    continue
                if previous is not None:
                    yield AudioChunk(_pause(previous, request.speed), OUTPUT_RATE)
                previous = item
                # The sentence's text, as received, just before its audio.
                found = unspoken.find(item)
                cut = found + len(item) if found >= 0 else len(unspoken)
                if unspoken[:cut]:
                    yield TextChunk(unspoken[:cut])
                unspoken = unspoken[cut:]
                speech = iterate_in_thread(
                    partial(
                        self.synthesizer.synthesize,
                        item,
                        voice=voice,
                        speed=request.speed,
                    ),
                    executor=self.executor,
                )
                try:
                    async for pcm in speech:
                        yield AudioChunk(pcm, OUTPUT_RATE)
                        # Text that came meanwhile goes out between chunks.
                        while not events.empty():
                            if (text := take(events.get_nowait())) is not None:
                                yield text
                finally:
                    await speech.aclose()
        finally:
            reader.cancel()
            await asyncio.wait([reader])
            if not reader.cancelled():
                reader.exception()  # retrieved: its errors went through events

    async def _read(
        self, request: ResponseRequest, events: asyncio.Queue[_Event]
    ) -> None:
        """Move the inner responder's chunks to ``events`` (a task)."""
        stream = self.inner.respond(request)
        try:
            async for chunk in stream:
                if isinstance(chunk, StopChunk):
                    events.put_nowait(_End(stop=chunk))
                    return
                if not isinstance(chunk, AudioChunk):
                    events.put_nowait(chunk)
        except Exception as exc:
            events.put_nowait(_End(exc))
        else:
            events.put_nowait(_End())
        finally:
            await _aclose(stream)


def _pause(previous: str, speed: float) -> bytes:
    """The silence between two pieces, as espeak-ng pauses within one text.

    Each piece is spoken by its own synthesizer call, which drops the pause
    at its end; this puts back what espeak-ng leaves after a sentence (about
    250 ms at speed 1.0) or a clause (about 100 ms), slower speeds pausing
    longer.
    """
    ms = _SENTENCE_PAUSE_MS if _ENDS_SENTENCE.search(previous) else _CLAUSE_PAUSE_MS
    return audio.silence(round(ms / max(speed, 0.25), -1), OUTPUT_RATE)


async def _aclose(stream: AsyncIterator[Chunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
