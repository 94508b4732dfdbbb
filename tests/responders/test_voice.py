"""SpeakingResponder: any responder's text, spoken sentence by sentence."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openrealtime import audio
from openrealtime.models.session import CustomVoice
from openrealtime.responders.base import (
    AudioChunk,
    Chunk,
    FunctionCallChunk,
    TextChunk,
)
from openrealtime.responders.echo import EchoResponder
from openrealtime.responders.voice import SentenceSplitter, SpeakingResponder
from openrealtime.session import ResponseRequest
from openrealtime.voice.tts import EspeakSynthesizer, SynthesisError
from tests.responders.conftest import make_request, user


__all__: list[str] = []

requires_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng binary not installed (apt-get install espeak-ng)",
)

TONE = AudioChunk(audio.tone(100, 24000, 440.0))
LONG = " ".join(f"This is sentence number {n} of a long reply." for n in range(40))


class Inner:
    """A responder that yields fixed chunks, optionally waiting on gates.

    An ``asyncio.Event`` among the chunks is awaited instead of yielded.
    """

    def __init__(self, *chunks: Chunk | asyncio.Event) -> None:
        self.chunks = chunks
        self.closed = False

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        try:
            for chunk in self.chunks:
                if isinstance(chunk, asyncio.Event):
                    await chunk.wait()
                else:
                    yield chunk
        finally:
            self.closed = True


class Failing:
    """A responder that fails after some text."""

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        yield TextChunk("Fine so far. ")
        raise RuntimeError("model crashed")


class SpySynthesizer:
    """Records calls; speaks 10 ms of a constant sample per character.

    With ``wrap``, delegates to a real synthesizer instead, still recording.
    """

    def __init__(self, wrap: EspeakSynthesizer | None = None) -> None:
        self.wrap = wrap
        self.calls: list[tuple[str, str, float]] = []
        self.iterators: list[Generator[bytes, None, None]] = []
        self.fail = False

    def synthesize(self, text: str, *, voice: str, speed: float) -> Iterator[bytes]:
        self.calls.append((text, voice, speed))
        iterator = (
            self.wrap.synthesize(text, voice=voice, speed=speed)
            if self.wrap is not None
            else self._fake(text)
        )
        assert isinstance(iterator, Generator)
        self.iterators.append(iterator)
        return iterator

    def _fake(self, text: str) -> Generator[bytes, None, None]:
        if self.fail:
            raise SynthesisError("espeak-ng exited with status 1: no voice")
        for _ in text:
            yield b"\x01\x00" * 240


def audio_request(**fields: Any) -> ResponseRequest:
    return make_request(output_modalities=["audio"], **fields)


async def collect(stream: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in stream]


def pcm(chunks: list[Chunk]) -> bytes:
    return b"".join(c.pcm16 for c in chunks if isinstance(c, AudioChunk))


def espeak_children() -> list[int]:
    """PIDs of live espeak-ng children of this process (Linux)."""
    pids: list[int] = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        pids += [int(p) for p in children.read_text().split()]
    return [p for p in pids if "espeak" in _comm(p)]


def _comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text()
    return ""


# --- Real speech (espeak-ng) -------------------------------------------------------


@requires_espeak
async def test_audio_modality_speaks_the_text_and_drops_the_tone() -> None:
    inner = Inner(TextChunk("Hello there. "), TextChunk("How are you?"), TONE, TONE)
    chunks = await collect(
        SpeakingResponder(inner, EspeakSynthesizer()).respond(audio_request())
    )
    texts = [c for c in chunks if isinstance(c, TextChunk)]
    audios = [c for c in chunks if isinstance(c, AudioChunk)]
    # Each sentence's text comes just before its audio; together, the text.
    assert texts == [TextChunk("Hello there."), TextChunk(" How are you?")]
    for text in texts:
        assert isinstance(chunks[chunks.index(text) + 1], AudioChunk)
    assert TONE not in audios
    assert all(c.rate == 24000 for c in audios)
    seconds = len(pcm(chunks)) / 48000
    assert 0.8 < seconds < 5.0
    assert inner.closed


@requires_espeak
async def test_different_voices_give_different_audio() -> None:
    inner = EchoResponder()
    speaker = SpeakingResponder(inner, EspeakSynthesizer())
    conversation = [user("The quick brown fox jumps over the lazy dog.")]
    alloy = pcm(
        await collect(
            speaker.respond(audio_request(conversation=conversation, voice="alloy"))
        )
    )
    echo = pcm(
        await collect(
            speaker.respond(audio_request(conversation=conversation, voice="echo"))
        )
    )
    assert alloy and echo
    assert alloy != echo


@requires_espeak
async def test_speed_changes_the_duration() -> None:
    speaker = SpeakingResponder(
        Inner(TextChunk("One sentence here. And a second one, with a clause.")),
        EspeakSynthesizer(),
    )
    slow = pcm(await collect(speaker.respond(audio_request(speed=0.5))))
    normal = pcm(await collect(speaker.respond(audio_request(speed=1.0))))
    fast = pcm(await collect(speaker.respond(audio_request(speed=1.5))))
    assert len(slow) > 1.5 * len(normal)
    assert len(normal) > 1.2 * len(fast)


@requires_espeak
async def test_aclose_stops_synthesis_and_kills_espeak() -> None:
    spy = SpySynthesizer(wrap=EspeakSynthesizer())
    inner = Inner(TextChunk(LONG))
    stream = SpeakingResponder(inner, spy).respond(audio_request())
    first = [await anext(stream) for _ in range(3)]
    assert isinstance(first[-1], AudioChunk)
    await stream.aclose()  # type: ignore[attr-defined]
    # One sentence had started of forty; its espeak-ng is gone.
    assert len(spy.calls) == 1
    assert all(
        inspect.getgeneratorstate(it) == inspect.GEN_CLOSED for it in spy.iterators
    )
    assert espeak_children() == []
    assert inner.closed


@requires_espeak
async def test_task_cancel_stops_synthesis() -> None:
    spy = SpySynthesizer(wrap=EspeakSynthesizer())
    got_audio = asyncio.Event()

    async def consume() -> None:
        async for chunk in SpeakingResponder(Inner(TextChunk(LONG)), spy).respond(
            audio_request()
        ):
            if isinstance(chunk, AudioChunk):
                got_audio.set()

    task = asyncio.create_task(consume())
    await got_audio.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(spy.calls) < 40
    assert all(
        inspect.getgeneratorstate(it) == inspect.GEN_CLOSED for it in spy.iterators
    )
    assert espeak_children() == []


# --- The pipeline (a fake synthesizer) ---------------------------------------------


async def test_text_modality_passes_everything_through() -> None:
    call = FunctionCallChunk("f", "{}", "call_1")
    inner = Inner(TextChunk("Hello. "), TONE, call)
    spy = SpySynthesizer()
    chunks = await collect(SpeakingResponder(inner, spy).respond(make_request()))
    assert chunks == [TextChunk("Hello. "), TONE, call]
    assert spy.calls == []
    assert inner.closed


async def test_voice_and_speed_reach_the_synthesizer() -> None:
    spy = SpySynthesizer()
    speaker = SpeakingResponder(Inner(TextChunk("Hi.")), spy)
    await collect(speaker.respond(audio_request(voice="cedar", speed=1.25)))
    await collect(speaker.respond(audio_request(voice=CustomVoice(id="voice_123"))))
    assert spy.calls == [("Hi.", "cedar", 1.25), ("Hi.", "alloy", 1.0)]


async def test_first_audio_comes_before_the_reply_is_complete() -> None:
    # The inner responder will not go on until the first audio was heard:
    # waiting for the whole reply would hang (the timeout turns a hang into
    # a failure; nothing here measures time).
    heard = asyncio.Event()
    inner = Inner(TextChunk("First sentence. Sec"), heard, TextChunk("ond sentence."))
    spy = SpySynthesizer()
    chunks: list[Chunk] = []
    async with asyncio.timeout(30):
        async for chunk in SpeakingResponder(inner, spy).respond(audio_request()):
            chunks.append(chunk)
            if isinstance(chunk, AudioChunk):
                heard.set()
    assert [text for text, _, _ in spy.calls] == ["First sentence.", "Second sentence."]
    assert chunks[0] == TextChunk("First sentence.")
    assert isinstance(chunks[1], AudioChunk)
    texts = [c.text for c in chunks if isinstance(c, TextChunk)]
    assert "".join(texts) == "First sentence. Second sentence."


async def test_pieces_are_joined_by_pauses() -> None:
    spy = SpySynthesizer()
    inner = Inner(TextChunk("Ab. Cd, " + "x" * 100 + ", ef"))
    chunks = await collect(
        SpeakingResponder(inner, spy, first_chars=10, max_chars=10).respond(
            audio_request()
        )
    )
    audios = [c.pcm16 for c in chunks if isinstance(c, AudioChunk)]
    silences = [len(a) // 48 for a in audios if not any(a)]
    # 250 ms after "Ab.", 100 ms after the clause cut, then the end.
    assert silences == [250, 100]
    assert [text for text, _, _ in spy.calls] == ["Ab.", "Cd, " + "x" * 100 + ",", "ef"]


async def test_function_call_comes_after_the_audio_before_it() -> None:
    call = FunctionCallChunk("get_weather", '{"city": "Paris"}', "call_1")
    inner = Inner(TextChunk("Let me check"), TONE, call, TextChunk("Done."))
    chunks = await collect(
        SpeakingResponder(inner, SpySynthesizer()).respond(audio_request())
    )
    kinds = [type(c).__name__ for c in chunks]
    position = chunks.index(call)
    assert kinds[:position] == ["TextChunk"] + ["AudioChunk"] * len("Let me check")
    # Text after the call does not overtake it, and comes before its audio
    # (after the pause that follows the speech before the call).
    assert TextChunk("Done.") in chunks[position + 1 : position + 3]
    assert kinds[position + 2 :].count("AudioChunk") > 0
    assert TONE not in chunks


async def test_inner_failure_propagates() -> None:
    spy = SpySynthesizer()
    with pytest.raises(RuntimeError, match="model crashed"):
        await collect(SpeakingResponder(Failing(), spy).respond(audio_request()))


async def test_synthesis_failure_propagates_and_closes_the_inner() -> None:
    spy = SpySynthesizer()
    spy.fail = True
    inner = Inner(TextChunk("Hello. "), TextChunk("More."))
    with pytest.raises(SynthesisError, match="no voice"):
        await collect(SpeakingResponder(inner, spy).respond(audio_request()))
    assert inner.closed


async def test_no_text_no_audio() -> None:
    call = FunctionCallChunk("f", "{}")
    chunks = await collect(
        SpeakingResponder(Inner(TONE, call), SpySynthesizer()).respond(audio_request())
    )
    assert chunks == [call]


# --- Sentence splitting ------------------------------------------------------------


def split(*texts: str, **kwargs: int) -> list[str]:
    splitter = SentenceSplitter(**kwargs)
    pieces = [p for text in texts for p in splitter.feed(text)]
    if (rest := splitter.flush()) is not None:
        pieces.append(rest)
    return pieces


def test_splits_on_sentence_ends_followed_by_space() -> None:
    assert split("Hi! How are you? I'm fine. Pi is 3.14 today") == [
        "Hi!",
        "How are you?",
        "I'm fine.",
        "Pi is 3.14 today",
    ]


def test_a_sentence_end_waits_for_what_follows() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("It costs 3.") == []
    assert splitter.feed("50 dollars. And") == ["It costs 3.50 dollars."]
    assert splitter.flush() == "And"
    assert splitter.flush() is None


def test_abbreviations_initials_quotes_and_newlines() -> None:
    assert split('Dr. Smith met J. Doe. "Really?" she said.\nNext line') == [
        "Dr. Smith met J. Doe.",
        '"Really?"',
        "she said.",
        "Next line",
    ]


def test_a_long_first_sentence_is_cut_at_a_clause() -> None:
    text = "Well, " + "word " * 30 + "and more, still going on and on"
    pieces = split(text, first_chars=40, max_chars=1000)
    assert pieces[0].endswith("more,")
    assert pieces[1] == "still going on and on"


def test_a_long_sentence_without_clauses_is_cut_at_a_space() -> None:
    pieces = split("a" * 5 + " " + "b" * 30 + " c", first_chars=10, max_chars=10)
    assert pieces == ["aaaaa " + "b" * 30, "c"]


def test_blank_text_gives_nothing() -> None:
    assert split("   ", "\n\n") == []
