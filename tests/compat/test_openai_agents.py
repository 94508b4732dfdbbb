"""openai-agents (``RealtimeRunner``), unmodified, through a whole conversation.

The SDK sends the agent's instructions and tools itself, runs the tool and
sends its output, and ``RealtimeSession.interrupt()`` truncates the reply
that is playing (with server VAD on, the default, it does not also cancel:
the hosted API's automatic cancellation is left to do that).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession
from openai import AsyncOpenAI

from tests.compat.conftest import API_KEY, STORY
from tests.server.conftest import LiveServer


#: Seconds any one step may take.
STEP = 20.0

calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    calls.append(city)
    return f"sunny in {city}, 22 degrees"


AGENT = RealtimeAgent(
    name="Weather", instructions="You are a weather assistant.", tools=[get_weather]
)


class Events:
    """The session's events, read in order: SDK events, and the server's raw
    events (as dicts) by their ``type``."""

    def __init__(self, session: RealtimeSession) -> None:
        self._events: AsyncIterator[Any] = session.__aiter__()
        self.seen: list[Any] = []

    async def until(self, done: Callable[[Any], bool]) -> list[Any]:
        """Events until ``done(event)``; an error event fails the test."""
        events: list[Any] = []
        async with asyncio.timeout(STEP):
            while True:
                event = await anext(self._events)
                assert event.type != "error", event.error
                raw = server_event(event)
                assert raw is None or raw["type"] != "error", raw
                events.append(event)
                self.seen.append(event)
                if done(event):
                    return events

    async def until_raw(self, *kinds: str) -> list[Any]:
        """Events until one server event of each type in ``kinds`` has come."""
        waiting = set(kinds)

        def done(event: Any) -> bool:
            raw = server_event(event)
            if raw is not None:
                waiting.discard(raw["type"])
            return not waiting

        return await self.until(done)


def server_event(event: Any) -> dict[str, Any] | None:
    """The server event under an SDK ``raw_model_event``, if it is one."""
    if event.type == "raw_model_event" and event.data.type == "raw_server_event":
        data: dict[str, Any] = event.data.data
        return data
    return None


def raw(events: list[Any], kind: str) -> list[dict[str, Any]]:
    found = [server_event(event) for event in events]
    return [data for data in found if data is not None and data["type"] == kind]


def transcript(events: list[Any]) -> str:
    deltas = raw(events, "response.output_audio_transcript.delta")
    return "".join(delta["delta"] for delta in deltas)


async def connect(live: LiveServer, api_key: str) -> RealtimeSession:
    runner = RealtimeRunner(AGENT)
    return await runner.run(
        model_config={"url": live.ws_url(model="gpt-realtime"), "api_key": api_key}
    )


async def test_conversation(live: LiveServer, speech: bytes) -> None:
    """Connect, tools, a text turn, a spoken turn, a tool call round trip."""
    calls.clear()
    async with await connect(live, API_KEY) as session:
        events = Events(session)
        # connect, and the SDK's own session.update with the agent's tool
        found = await events.until_raw("session.created", "session.updated")
        (updated,) = raw(found, "session.updated")
        assert [tool["name"] for tool in updated["session"]["tools"]] == ["get_weather"]

        # a text turn
        await session.send_message("Hello there")
        found = await events.until_raw("response.done")
        assert raw(found, "response.done")[0]["response"]["status"] == "completed"
        assert transcript(found) == "Hello from openrealtime."
        assert [e for e in found if e.type == "audio"]

        # a spoken turn: server VAD finds it, commits it, and a reply follows
        for start in range(0, len(speech), 4800):
            await session.send_audio(speech[start : start + 4800])
        found = await events.until_raw("response.done")
        assert len(raw(found, "input_audio_buffer.speech_started")) == 1
        assert len(raw(found, "input_audio_buffer.committed")) == 1
        assert transcript(found) == "Hello from openrealtime."

        # a tool call: the SDK runs the tool, sends its output, asks again
        await session.send_message("What is the weather in Paris?")
        found = await events.until(
            lambda e: (
                (d := server_event(e)) is not None
                and d["type"] == "response.done"
                and any(i["type"] == "message" for i in d["response"]["output"])
            )
        )
        assert calls == ["Paris"]
        assert [e.type for e in found if e.type in ("tool_start", "tool_end")] == [
            "tool_start",
            "tool_end",
        ]
        assert transcript(found) == "It is sunny in Paris, twenty two degrees."


async def test_interrupt(live: LiveServer) -> None:
    """``RealtimeSession.interrupt()`` while the reply's audio is streaming."""
    async with await connect(live, API_KEY) as session:
        events = Events(session)
        await events.until_raw("session.updated")
        await session.send_message("Tell me a story")
        await events.until(lambda e: e.type == "audio")
        await session.interrupt()
        found = await events.until_raw("conversation.item.truncated", "response.done")
        assert [e for e in found if e.type == "audio_interrupted"]
        kinds = [d["type"] for d in map(server_event, found) if d is not None]
        # the reply was still streaming when it was cut
        assert kinds.index("conversation.item.truncated") < kinds.index("response.done")
        (truncated,) = raw(found, "conversation.item.truncated")
        (done,) = raw(found, "response.done")
        (item,) = done["response"]["output"]
        assert truncated["item_id"] == item["id"]
        # what was not heard is gone, also after the reply completed
        heard = item["content"][0]["transcript"]
        assert STORY.startswith(heard) and len(heard) < len(STORY)


async def test_ephemeral_key(live: LiveServer) -> None:
    """An ``ek_`` key, made with the API key, is all the agent needs."""
    async with AsyncOpenAI(api_key=API_KEY, base_url=live.http + "/v1") as client:
        secret = await client.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime"}
        )
    assert secret.value.startswith("ek_")
    async with await connect(live, secret.value) as session:
        events = Events(session)
        await events.until_raw("session.updated")
        await session.send_message("Hello")
        found = await events.until_raw("response.done")
        assert transcript(found) == "Hello from openrealtime."
