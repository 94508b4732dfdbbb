"""End to end, offline: spoken audio in, VAD, transcript, spoken reply out.

A sentence is synthesised with espeak-ng, streamed through
``input_audio_buffer.append`` in 20 ms chunks over a real server running the
voice pipeline (Silero VAD, PocketSphinx, espeak). Then session settings are
changed by ``session.update`` and the outcome must change with them.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from openrealtime import audio
from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from openrealtime.voice.tts import EspeakSynthesizer, available
from tests.server.conftest import DRIVERS, LiveServer, running_server


pytestmark = pytest.mark.skipif(
    not available(), reason="espeak-ng is not installed (scripts/test.sh installs it)"
)

CHUNK = 960  # 20 ms of 24 kHz PCM16
WAIT = 60.0  # upper bound on one scenario, seconds


def speak(text: str, voice: str = "echo") -> bytes:
    """espeak-ng speech as 24 kHz PCM16."""
    return b"".join(EspeakSynthesizer().synthesize(text, voice=voice, speed=1.0))


@pytest.fixture(scope="module", params=DRIVERS)
def voice_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    pipeline = Pipeline(vad="silero", transcription="pocketsphinx", speech="espeak")
    with running_server(Settings(pipeline=pipeline, pace=0), request.param) as live:
        yield live


async def converse(
    server: LiveServer,
    patch: dict[str, Any],
    stream: bytes,
    *,
    until: str = "response.done",
    count: int = 1,
    barrier: bool = False,
) -> list[dict[str, Any]]:
    """Configure a session, stream audio in 20 ms chunks, collect events.

    With ``barrier``, a manual commit follows the audio and collection stops
    at its answer: events are in order, so every VAD event of the audio
    before it has been sent by then.
    """
    events: list[dict[str, Any]] = []
    async with websockets.connect(server.ws_url(model="gpt-realtime")) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(
            json.dumps(
                {"type": "session.update", "session": {"type": "realtime", **patch}}
            )
        )
        assert json.loads(await ws.recv())["type"] == "session.updated"

        async def reader() -> None:
            seen = 0
            async for frame in ws:
                event = json.loads(frame)
                events.append(event)
                if (
                    barrier
                    and event["type"] == "error"
                    and event["error"]["code"] == ("input_audio_buffer_commit_empty")
                ):
                    return
                if event["type"] == until:
                    seen += 1
                    if seen == count:
                        return

        task = asyncio.create_task(reader())
        for i in range(0, len(stream), CHUNK):
            chunk = base64.b64encode(stream[i : i + CHUNK]).decode()
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": chunk})
            )
        if barrier:
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        try:
            await asyncio.wait_for(task, WAIT)
        except TimeoutError:
            task.cancel()
            pytest.fail(
                f"no {until!r} within {WAIT} s; got {[e['type'] for e in events]}"
            )
    return events


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


SENTENCE = "Hello world. What is the weather like today?"


async def test_spoken_turn(voice_server: LiveServer) -> None:
    """Speech boundaries, a transcript with the key words, and a spoken reply."""
    speech = speak(SENTENCE)
    speech_ms = len(speech) / 48
    stream = audio.silence(500, 24000) + speech + audio.silence(1500, 24000)
    patch = {
        "audio": {
            "input": {
                "transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
            }
        }
    }
    events = await converse(voice_server, patch, stream)
    (started,) = of(events, "input_audio_buffer.speech_started")
    (stopped,) = of(events, "input_audio_buffer.speech_stopped")
    # Speech starts at 500 ms; audio_start_ms goes back prefix_padding_ms (300).
    assert 100 <= started["audio_start_ms"] <= 400
    # It ends near 500 + speech_ms; audio_end_ms adds silence_duration_ms (700).
    assert abs(stopped["audio_end_ms"] - (500 + speech_ms + 700)) < 400
    (completed,) = of(events, "conversation.item.input_audio_transcription.completed")
    words = completed["transcript"].lower()
    assert {"hello", "world", "weather", "today"} & set(words.split()), words
    deltas = of(events, "response.output_audio.delta")
    assert deltas, "no spoken reply"
    spoken = b"".join(base64.b64decode(d["delta"]) for d in deltas)
    assert len(spoken) > 24000  # more than half a second of speech
    assert audio.rms(spoken) > 0.01
    # The echo responder says back what it understood.
    (transcript,) = of(events, "response.output_audio_transcript.done")
    assert transcript["transcript"] == completed["transcript"]


async def test_silence_duration_changes_turns(voice_server: LiveServer) -> None:
    """A 600 ms pause ends a turn at silence_duration_ms 300, not at 1200."""
    stream = (
        audio.silence(400, 24000)
        + speak("Hello world.")
        + audio.silence(600, 24000)
        + speak("What is the weather?")
        + audio.silence(1800, 24000)
    )
    short = {
        "audio": {
            "input": {
                "turn_detection": {"silence_duration_ms": 300, "create_response": False}
            }
        }
    }
    long = {
        "audio": {
            "input": {
                "turn_detection": {
                    "silence_duration_ms": 1200,
                    "create_response": False,
                }
            }
        }
    }
    events = await converse(
        voice_server, short, stream, until="input_audio_buffer.committed", count=2
    )
    assert len(of(events, "input_audio_buffer.speech_stopped")) == 2
    events = await converse(
        voice_server,
        long,
        stream,
        until="input_audio_buffer.committed",
        count=2,
        barrier=True,
    )
    # The barrier's commit (or its "buffer too small" error) ends collection:
    # all the audio has been judged, and it made one turn.
    assert len(of(events, "input_audio_buffer.speech_stopped")) == 1


async def test_threshold_changes_detection(voice_server: LiveServer) -> None:
    """threshold 1.0 hears nothing; the default hears the same speech."""
    stream = (
        audio.silence(300, 24000) + speak("Hello world.") + audio.silence(1000, 24000)
    )
    deaf = {
        "audio": {
            "input": {"turn_detection": {"threshold": 1.0, "create_response": False}}
        }
    }
    events = await converse(
        voice_server, deaf, stream, until="input_audio_buffer.committed", barrier=True
    )
    assert of(events, "input_audio_buffer.speech_started") == []
    normal = {"audio": {"input": {"turn_detection": {"create_response": False}}}}
    events = await converse(
        voice_server, normal, stream, until="input_audio_buffer.committed"
    )
    assert len(of(events, "input_audio_buffer.speech_started")) == 1


async def test_transcription_null_and_voice(voice_server: LiveServer) -> None:
    """transcription null: no transcript events; another voice: other audio."""
    stream = (
        audio.silence(300, 24000) + speak("Hello world.") + audio.silence(1200, 24000)
    )
    replies = {}
    for voice in ("alloy", "sage"):
        patch = {
            "audio": {"input": {"transcription": None}, "output": {"voice": voice}}
        }
        events = await converse(voice_server, patch, stream)
        assert of(events, "conversation.item.input_audio_transcription.completed") == []
        (done,) = of(events, "response.output_audio_transcript.done")
        assert done["transcript"] == "I heard you, but transcription is off."
        replies[voice] = b"".join(
            base64.b64decode(d["delta"])
            for d in of(events, "response.output_audio.delta")
        )
    assert replies["alloy"] and replies["sage"]
    assert replies["alloy"] != replies["sage"]
