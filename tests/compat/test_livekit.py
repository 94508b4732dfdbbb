"""livekit-plugins-openai (``RealtimeModel``/``RealtimeSession``), unmodified.

Driven as LiveKit's ``AgentSession`` drives it: user turns go into the chat
context, ``generate_reply()`` without instructions asks for a reply (it
sends ``"instructions": null``), a tool call's output goes back through the
chat context followed by another ``generate_reply()``, and an interruption
is ``interrupt()`` (``response.cancel``) then ``truncate()`` at what was
played. The server's events are watched through the session's
``openai_server_event_received`` event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from livekit import rtc
from livekit.agents import llm
from livekit.plugins.openai.realtime import RealtimeModel, RealtimeSession
from openai import AsyncOpenAI

from tests.compat.conftest import API_KEY, STORY
from tests.server.conftest import LiveServer


#: Seconds any one step may take.
STEP = 20.0

calls: list[str] = []


@llm.function_tool
async def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city.
    """
    calls.append(city)
    return f"sunny in {city}, 22 degrees"


class ServerEvents:
    """The server's events as the session received them, and errors."""

    def __init__(self, session: RealtimeSession) -> None:
        self.seen: list[dict[str, Any]] = []
        self.errors: list[Any] = []
        self._changed = asyncio.Event()
        session.on("openai_server_event_received", self._on_event)
        session.on("error", self.errors.append)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.seen.append(event)
        self._changed.set()

    async def wait(
        self, match: Callable[[dict[str, Any]], bool], since: int = 0
    ) -> Any:
        """The first event since index ``since`` that matches."""
        async with asyncio.timeout(STEP):
            while True:
                for event in self.seen[since:]:
                    assert event["type"] != "error", event
                    if match(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def of(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.seen[since:] if e["type"] == kind]


def kind(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["type"] == name


@asynccontextmanager
async def realtime(live: LiveServer, api_key: str) -> AsyncIterator[RealtimeSession]:
    async with aiohttp.ClientSession() as http:
        model = RealtimeModel(
            api_key=api_key, base_url=live.http + "/v1", http_session=http
        )
        session = model.session()
        try:
            yield session
        finally:
            await session.aclose()
            await model.aclose()


async def user_says(session: RealtimeSession, text: str) -> None:
    chat_ctx = session.chat_ctx.copy()
    chat_ctx.add_message(role="user", content=text)
    await session.update_chat_ctx(chat_ctx)


async def reply(generation: llm.GenerationCreatedEvent) -> tuple[str, int, list[Any]]:
    """A generation's text, its number of audio frames, its function calls."""
    text, frames = "", 0
    async with asyncio.timeout(STEP):
        async for message in generation.message_stream:
            async for delta in message.text_stream:
                text += str(delta)
            async for _frame in message.audio_stream:
                frames += 1
        calls = [call async for call in generation.function_stream]
    return text, frames, calls


async def test_conversation(live: LiveServer, speech: bytes) -> None:
    """Connect, tools, a text turn, a spoken turn, a tool call round trip."""
    calls.clear()
    async with realtime(live, API_KEY) as session:
        events = ServerEvents(session)
        await events.wait(kind("session.created"))

        # session.update with the instructions and a tool
        await session.update_instructions("You are a weather assistant.")
        await session.update_tools([get_weather])
        await events.wait(
            lambda e: (
                e["type"] == "session.updated"
                and [t["name"] for t in e["session"]["tools"]] == ["get_weather"]
            )
        )

        # a text turn: generate_reply() without instructions
        await user_says(session, "Hello there")
        text, frames, _ = await reply(await session.generate_reply())
        assert text == "Hello from openrealtime."
        assert frames > 0

        # a spoken turn: server VAD ends it and the server replies by itself
        created: asyncio.Future[llm.GenerationCreatedEvent] = (
            asyncio.get_running_loop().create_future()
        )
        session.once("generation_created", created.set_result)
        mark = len(events.seen)
        for start in range(0, len(speech), 4800):
            chunk = speech[start : start + 4800]
            session.push_audio(rtc.AudioFrame(chunk, 24000, 1, len(chunk) // 2))
        async with asyncio.timeout(STEP):
            generation = await created
        text, _, _ = await reply(generation)
        assert text == "Hello from openrealtime."
        assert len(events.of("input_audio_buffer.speech_started", mark)) == 1
        assert len(events.of("input_audio_buffer.committed", mark)) == 1

        # a tool call, its output through the chat context, and the reply
        await user_says(session, "What is the weather in Paris?")
        _, _, (call,) = await reply(await session.generate_reply())
        assert call.name == "get_weather"
        output = await get_weather(**json.loads(call.arguments))
        chat_ctx = session.chat_ctx.copy()
        chat_ctx.items.append(
            llm.FunctionCallOutput(
                call_id=call.call_id, name=call.name, output=output, is_error=False
            )
        )
        await session.update_chat_ctx(chat_ctx)
        text, _, _ = await reply(await session.generate_reply())
        assert calls == ["Paris"]
        assert text == "It is sunny in Paris, twenty two degrees."
        assert events.errors == []


async def test_interruption(live: LiveServer) -> None:
    """As AgentSession interrupts: ``interrupt()``, then ``truncate()`` at what played."""
    async with realtime(live, API_KEY) as session:
        events = ServerEvents(session)
        await events.wait(kind("session.updated"))
        await user_says(session, "Tell me a story")
        generation = await session.generate_reply()
        async with asyncio.timeout(STEP):
            message = await anext(aiter(generation.message_stream))
            played = 0  # samples: stop after 300 ms have come
            async for frame in message.audio_stream:
                played += frame.samples_per_channel
                if played >= 300 * 24:
                    break
        mark = len(events.seen)
        session.interrupt()
        session.truncate(
            message_id=message.message_id, modalities=["audio"], audio_end_ms=200
        )
        done = await events.wait(kind("response.done"), mark)
        truncated = await events.wait(kind("conversation.item.truncated"), mark)
        assert (truncated["item_id"], truncated["audio_end_ms"]) == (
            message.message_id,
            200,
        )
        assert done["response"]["status"] == "cancelled"
        heard = done["response"]["output"][0]["content"][0]["transcript"]
        assert STORY.startswith(heard) and len(heard) < len(STORY)
        assert events.errors == []


async def test_ephemeral_key(live: LiveServer) -> None:
    """An ``ek_`` key, made with the API key, is all the plugin needs."""
    async with AsyncOpenAI(api_key=API_KEY, base_url=live.http + "/v1") as client:
        secret = await client.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime"}
        )
    assert secret.value.startswith("ek_")
    async with realtime(live, secret.value) as session:
        events = ServerEvents(session)
        await events.wait(kind("session.updated"))
        await user_says(session, "Hello")
        text, _, _ = await reply(await session.generate_reply())
        assert text == "Hello from openrealtime."
        assert events.errors == []
