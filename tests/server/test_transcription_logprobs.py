"""Input transcription's logprobs and token usage, over a live server, on human speech.

Whisper (the default recognizer) gives a log probability per word when the
session's ``include`` asks for ``item.input_audio_transcription.logprobs``
and counts tokens (usage ``type: "tokens"``); PocketSphinx gives neither
(``logprobs: null``, usage in seconds). The clip is a LibriVox sentence
from Debian's ``pocketsphinx-testdata``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from openrealtime import audio
from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from tests.server.conftest import LiveServer, running_server
from tests.voice.test_whisper import human_clip


CLIP = "librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
INCLUDE = ["item.input_audio_transcription.logprobs"]
WAIT = 90.0


def clip24() -> bytes:
    pcm, rate = human_clip(CLIP)
    return audio.resample(pcm, rate, 24000)


@pytest.fixture(scope="module")
def whisper_server() -> Iterator[LiveServer]:
    pipeline = Pipeline(vad="silero", transcription="whisper", speech="none")
    with running_server(Settings(pipeline=pipeline, pace=0), "picows") as live:
        yield live


async def transcribe(
    server: LiveServer, session: dict[str, Any], pcm24: bytes, *, commit: bool
) -> list[dict[str, Any]]:
    """Stream ``pcm24`` into a session configured with ``session``; return
    its transcription events up to the first ``...completed``."""
    events: list[dict[str, Any]] = []
    async with websockets.connect(server.ws_url(model="gpt-realtime")) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(
            json.dumps(
                {"type": "session.update", "session": {"type": "realtime", **session}}
            )
        )
        updated = json.loads(await ws.recv())
        assert updated["type"] == "session.updated", updated
        for i in range(0, len(pcm24), 960):
            chunk = base64.b64encode(pcm24[i : i + 960]).decode()
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": chunk})
            )
        if commit:
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))

        async def read() -> None:
            async for frame in ws:
                event = json.loads(frame)
                if "input_audio_transcription" in event["type"]:
                    events.append(event)
                    if not event["type"].endswith(".delta"):
                        return

        await asyncio.wait_for(read(), WAIT)
    return events


def manual(model: str = "whisper-1", **transcription: Any) -> dict[str, Any]:
    return {
        "audio": {
            "input": {
                "turn_detection": None,
                "transcription": {"model": model, **transcription},
            }
        }
    }


async def test_whisper_logprobs_and_token_usage(whisper_server: LiveServer) -> None:
    """One log probability per delta (its word), all of them on the
    transcript, and usage counted in Whisper's tokens."""
    pcm24 = clip24()
    events = await transcribe(
        whisper_server, {**manual(), "include": INCLUDE}, pcm24, commit=True
    )
    *deltas, completed = events
    assert completed["type"] == "conversation.item.input_audio_transcription.completed"
    assert len(deltas) >= 5
    assert "young man" in completed["transcript"]
    assert "".join(d["delta"] for d in deltas) == completed["transcript"]
    for delta in deltas:
        (entry,) = delta["logprobs"]
        assert entry["token"] == delta["delta"]
        assert entry["bytes"] == list(delta["delta"].encode())
        assert -30 < entry["logprob"] <= 0
    assert completed["logprobs"] == [d["logprobs"][0] for d in deltas]
    # Not all certain: the recognizer's own numbers, not a constant.
    assert len({e["logprob"] for e in completed["logprobs"]}) > 1
    usage = completed["usage"]
    seconds = len(pcm24) / 2 / 24000
    assert usage["type"] == "tokens"
    # One audio token per 20 ms (Whisper's encoder positions), no prompt.
    assert usage["input_token_details"] == {
        "audio_tokens": math.ceil(seconds * 50),
        "text_tokens": 0,
    }
    assert usage["input_tokens"] == math.ceil(seconds * 50)
    # Output: the decoded text tokens, at least one per word.
    assert usage["output_tokens"] >= len(deltas)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_whisper_without_include_and_with_a_prompt(
    whisper_server: LiveServer,
) -> None:
    """No logprobs unless asked; a prompt counts as input text tokens."""
    events = await transcribe(
        whisper_server,
        manual(prompt="Mister Dashwood, ill-disposed."),
        clip24(),
        commit=True,
    )
    *deltas, completed = events
    assert deltas and all("logprobs" not in e for e in events)
    usage = completed["usage"]
    details = usage["input_token_details"]
    assert details["text_tokens"] > 3
    assert usage["input_tokens"] == details["audio_tokens"] + details["text_tokens"]


async def test_whisper_logprobs_with_server_vad(whisper_server: LiveServer) -> None:
    """With server VAD the turn is decoded early (while the silence runs);
    that decode carries the logprobs too."""
    session = {
        "include": INCLUDE,
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {
                    "type": "server_vad",
                    "silence_duration_ms": 500,
                    "create_response": False,
                },
            }
        },
    }
    stream = audio.silence(300, 24000) + clip24() + audio.silence(1200, 24000)
    *deltas, completed = await transcribe(whisper_server, session, stream, commit=False)
    assert completed["type"] == "conversation.item.input_audio_transcription.completed"
    assert completed["logprobs"] == [d["logprobs"][0] for d in deltas]
    assert completed["logprobs"] and completed["usage"]["type"] == "tokens"


async def test_pocketsphinx_gives_null_logprobs_and_seconds() -> None:
    """An engine without logprobs or tokens: ``null`` and usage in seconds."""
    pipeline = Pipeline(vad="silero", transcription="pocketsphinx", speech="none")
    with running_server(Settings(pipeline=pipeline, pace=0), "picows") as live:
        pcm24 = clip24()
        events = await transcribe(
            live, {**manual("pocketsphinx"), "include": INCLUDE}, pcm24, commit=True
        )
    *deltas, completed = events
    assert deltas and all(d["logprobs"] is None for d in deltas)
    assert completed["transcript"] and completed["logprobs"] is None
    assert completed["usage"] == {
        "type": "duration",
        "seconds": round(len(pcm24) / 2 / 24000, 3),
    }
