"""openai-python (``client.realtime.connect``), unmodified, through a whole conversation."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from openai import AsyncOpenAI

from tests.compat.conftest import API_KEY, STORY, TOOL
from tests.server.conftest import LiveServer


#: Seconds any one step may take.
STEP = 20.0


async def until(conn: Any, *kinds: str) -> list[Any]:
    """Events until one of each type in ``kinds`` has come; no errors."""
    events: list[Any] = []
    waiting = set(kinds)
    async with asyncio.timeout(STEP):
        async for event in conn:
            assert event.type != "error", event.error
            events.append(event)
            waiting.discard(event.type)
            if not waiting:
                return events
    raise AssertionError(f"the connection closed before {waiting}")


def of(events: list[Any], kind: str) -> list[Any]:
    return [event for event in events if event.type == kind]


async def say(conn: Any, text: str) -> None:
    await conn.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
    )
    await conn.response.create()


def transcript(events: list[Any]) -> str:
    return "".join(
        e.delta for e in of(events, "response.output_audio_transcript.delta")
    )


async def test_conversation(live: LiveServer, speech: bytes) -> None:
    """Connect, tools, a text turn, a spoken turn, a tool call round trip."""
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=live.ws_base)
    async with client, client.realtime.connect(model="gpt-realtime") as conn:
        # connect
        assert (await conn.recv()).type == "session.created"

        # session.update with tools (input transcription on, as apps ask)
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "You are a weather assistant.",
                "tools": [TOOL],
                "tool_choice": "auto",
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            }
        )
        updated = (await until(conn, "session.updated"))[-1].session
        assert [tool.name for tool in updated.tools] == ["get_weather"]
        assert updated.audio.input.turn_detection.type == "server_vad"

        # a text turn, answered in audio with its transcript
        await say(conn, "Hello there")
        events = await until(conn, "response.done")
        assert events[-1].response.status == "completed"
        assert transcript(events) == "Hello from openrealtime."
        assert of(events, "response.output_audio.delta")

        # a spoken turn: server VAD finds it, commits it, and a reply follows
        step = 4800  # 100 ms of PCM16 at 24 kHz
        for start in range(0, len(speech), step):
            await conn.input_audio_buffer.append(
                audio=base64.b64encode(speech[start : start + step]).decode()
            )
        events = await until(conn, "response.done")
        kinds = [e.type for e in events]
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index(
            "input_audio_buffer.speech_stopped"
        )
        assert "input_audio_buffer.committed" in kinds
        assert events[-1].response.status == "completed"
        assert transcript(events) == "Hello from openrealtime."

        # a tool call, its output, and the reply that uses it
        await say(conn, "What is the weather in Paris?")
        events = await until(conn, "response.done")
        (call,) = events[-1].response.output
        assert (call.type, call.name) == ("function_call", "get_weather")
        assert json.loads(call.arguments) == {"city": "Paris"}
        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps({"sky": "sunny", "celsius": 22}),
            }
        )
        await conn.response.create()
        events = await until(conn, "response.done")
        assert transcript(events) == "It is sunny in Paris, twenty two degrees."


async def test_interruption(live: LiveServer) -> None:
    """While the reply's audio streams: truncate what was played, cancel the rest."""
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=live.ws_base)
    async with client, client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await say(conn, "Tell me a story")
        # play 300 ms of it, and stop the user after 200 ms
        received = 0
        while received < 300 * 48:
            events = await until(conn, "response.output_audio.delta")
            received += len(base64.b64decode(events[-1].delta))
        item_id = events[-1].item_id
        await conn.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=200
        )
        await conn.response.cancel()
        events = await until(conn, "conversation.item.truncated", "response.done")
        (truncated,) = of(events, "conversation.item.truncated")
        assert (truncated.item_id, truncated.audio_end_ms) == (item_id, 200)
        kinds = [event.type for event in events]
        assert kinds.index("conversation.item.truncated") < kinds.index("response.done")
        (done,) = of(events, "response.done")
        assert done.response.status == "cancelled"
        # the item keeps what was heard, not the whole planned reply
        heard = done.response.output[0].content[0].transcript
        assert STORY.startswith(heard) and len(heard) < len(STORY)


async def test_ephemeral_key(live: LiveServer) -> None:
    """An ``ek_`` key, made with the API key, opens a session on its own."""
    async with AsyncOpenAI(api_key=API_KEY, base_url=live.http + "/v1") as client:
        secret = await client.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime", "tools": [TOOL]}
        )
    assert secret.value.startswith("ek_")
    browser = AsyncOpenAI(api_key=secret.value, websocket_base_url=live.ws_base)
    async with browser, browser.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert [tool.name for tool in created.session.tools] == ["get_weather"]
        await say(conn, "Hello")
        events = await until(conn, "response.done")
        assert transcript(events) == "Hello from openrealtime."
