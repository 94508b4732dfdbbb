"""Tests for openrealtime.voice.transcribe (transcription off the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from openrealtime.voice.asr import UnsupportedLanguage
from openrealtime.voice.transcribe import (
    DEFAULT_TRANSCRIPTION_ENGINE,
    TRANSCRIPTION_ENGINES,
    iterate_in_thread,
    transcribe_action,
    transcription_engine,
)


__all__: list[str] = []

#: The names the spec lists for ``audio.input.transcription.model``.
SPEC_MODELS = [
    "whisper-1",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
]


class FakeTranscriber:
    """Yields the given words; records the threads it ran on."""

    def __init__(self, *words: str) -> None:
        self.words = words
        self.threads: list[int] = []
        self.args: tuple[object, ...] = ()

    def transcribe(
        self, pcm16: bytes, rate: int, *, language: str | None, prompt: str | None
    ) -> Iterator[str]:
        self.threads.append(threading.get_ident())
        if language not in (None, "en"):
            raise UnsupportedLanguage(language, ("en",))
        self.args = (pcm16, rate, language, prompt)
        return self._deltas()

    def _deltas(self) -> Iterator[str]:
        for i, word in enumerate(self.words):
            self.threads.append(threading.get_ident())
            yield word if i == 0 else " " + word


async def test_deltas_come_in_order_from_worker_threads() -> None:
    fake = FakeTranscriber("hello", "big", "world")
    deltas = [
        d
        async for d in transcribe_action(
            fake, b"\x00\x00" * 160, 16000, language="en", prompt="greeting"
        )
    ]
    assert deltas == ["hello", " big", " world"]
    assert fake.args == (b"\x00\x00" * 160, 16000, "en", "greeting")
    assert threading.get_ident() not in fake.threads


async def test_unsupported_language_propagates() -> None:
    with pytest.raises(UnsupportedLanguage, match="'fr' is not supported"):
        async for _ in transcribe_action(
            FakeTranscriber("x"), b"", 16000, language="fr", prompt=None
        ):
            pass


async def test_pocketsphinx_through_the_action(speak: Callable[..., bytes]) -> None:
    pytest.importorskip("pocketsphinx")
    from openrealtime.voice.asr import PocketSphinxTranscriber

    asr = PocketSphinxTranscriber()
    deltas = [
        d
        async for d in transcribe_action(
            asr, speak("hello world"), 24000, language=None, prompt=None
        )
    ]
    assert "".join(deltas) == "hello world"
    with pytest.raises(UnsupportedLanguage):
        async for _ in transcribe_action(asr, b"", 24000, language="de", prompt=None):
            pass


async def test_cancel_waits_for_the_step_in_flight_then_closes() -> None:
    entered = threading.Event()
    release = threading.Event()
    log: list[str] = []

    def blocking() -> Iterator[int]:
        try:
            yield 1
            entered.set()
            release.wait()
            log.append("step finished")
            yield 2
        finally:
            log.append("closed")

    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in iterate_in_thread(blocking):
            got_first.set()

    task = asyncio.create_task(consume())
    await got_first.wait()
    await asyncio.to_thread(entered.wait)
    task.cancel()
    await asyncio.sleep(0)
    # The generator cannot be closed while its thread is inside it.
    assert log == []
    release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert log == ["step finished", "closed"]


async def test_aclose_between_items_closes_the_iterator() -> None:
    log: list[str] = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            log.append("closed")

    stream = iterate_in_thread(endless)
    assert [await anext(stream), await anext(stream)] == [1, 2]
    await stream.aclose()
    assert log == ["closed"]


async def test_errors_of_the_iterator_propagate() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise OSError("decoder crashed")

    got: list[int] = []
    with pytest.raises(OSError, match="decoder crashed"):
        async for item in iterate_in_thread(failing):
            got.append(item)
    assert got == [1]


def test_every_spec_model_name_has_an_engine() -> None:
    assert set(SPEC_MODELS) <= set(TRANSCRIPTION_ENGINES)
    assert set(TRANSCRIPTION_ENGINES.values()) == {"whisper"}
    assert all(transcription_engine(m) == "whisper" for m in SPEC_MODELS)
    assert transcription_engine("my-own-model") == DEFAULT_TRANSCRIPTION_ENGINE
    assert DEFAULT_TRANSCRIPTION_ENGINE == "whisper"


async def test_steps_run_on_the_given_executor() -> None:
    fake = FakeTranscriber("one", "two")
    with ThreadPoolExecutor(1, thread_name_prefix="asr") as pool:
        names = set()
        async for _ in transcribe_action(
            fake, b"", 16000, language=None, prompt=None, executor=pool
        ):
            names.add(threading.current_thread().name)
        workers = {t.ident: t.name for t in threading.enumerate()}
    assert {workers.get(ident, "") for ident in fake.threads} == {"asr_0"}
    assert names == {threading.current_thread().name}
