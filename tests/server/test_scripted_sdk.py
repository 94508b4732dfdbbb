"""A whole scripted voice conversation with a function call, through the openai SDK."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from openrealtime import audio
from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from tests.server.conftest import DRIVERS, LiveServer, running_server


FIXTURE = Path(__file__).parents[1] / "fixtures" / "weather.yaml"
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module", params=DRIVERS)
def scripted(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    # speech "none": the scripted responder's tone stands in for speech, so
    # the test does not depend on espeak; test_voice_e2e covers real speech.
    pipeline = Pipeline(responder="scripted", fixtures=str(FIXTURE), speech="none")
    with running_server(Settings(pipeline=pipeline, pace=0), request.param) as live:
        yield live


async def turn(conn: Any) -> list[Any]:
    """Events until response.done (and the rate_limits.updated after it)."""
    events = []
    async for event in conn:
        if event.type == "rate_limits.updated":
            assert events[-1].type == "response.done"
            return events
        events.append(event)
    raise AssertionError("connection closed before response.done")


async def test_scripted_voice_conversation(scripted: LiveServer) -> None:
    """Greeting, a weather question, the tool call round trip, a spoken answer."""
    client = AsyncOpenAI(api_key="local", websocket_base_url=scripted.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(
            session={
                "type": "realtime",
                "tools": [TOOL],
                "audio": {
                    "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}
                },
            }
        )
        updated = await conn.recv()
        assert updated.type == "session.updated"
        assert updated.session.tools[0].name == "get_weather"

        async def say(text: str) -> list[Any]:
            await conn.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
            )
            await conn.response.create()
            return await turn(conn)

        events = await say("Hello there")
        done = events[-1].response
        assert done.status == "completed"
        assert (
            done.output[0].content[0].transcript == "Hello! Ask me about the weather."
        )
        spoken = b"".join(
            base64.b64decode(e.delta)
            for e in events
            if e.type == "response.output_audio.delta"
        )
        pcm, rate = audio.to_pcm16(spoken, "audio/pcmu")
        assert rate == 8000 and audio.rms(pcm) > 0.05  # G.711 audio, decoded back

        events = await say("What's the weather?")
        call = next(
            e for e in events if e.type == "response.function_call_arguments.done"
        )
        assert call.name == "get_weather"
        assert json.loads(call.arguments) == {"city": "Paris"}
        types = [e.type for e in events]
        assert types.index("response.output_audio_transcript.done") < types.index(
            "response.function_call_arguments.done"
        )

        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": '{"sky":"clear"}',
            }
        )
        assert (await conn.recv()).type == "conversation.item.added"
        assert (await conn.recv()).type == "conversation.item.done"
        await conn.response.create()
        events = await turn(conn)
        answer = events[-1].response.output[0].content[0].transcript
        assert answer == "It is sunny in Paris, twenty two degrees."

        # The voice is locked now that assistant audio exists.
        await conn.session.update(
            session={"type": "realtime", "audio": {"output": {"voice": "ash"}}}
        )
        error = await conn.recv()
        assert error.type == "error"
        assert error.error.code == "cannot_update_voice"
