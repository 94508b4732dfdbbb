"""pipecat-ai (``OpenAIRealtimeLLMService``), unmodified, in a pipeline.

The pipeline is the one pipecat's realtime examples build, without a media
transport: the context aggregators around the service, frames queued in as
a transport would push them (``LLMMessagesAppendFrame`` for typed text,
``InputAudioRawFrame`` for the microphone), and what comes out recorded.
A registered function answers the tool call; the interruption is the user
speaking over the reply (server VAD cancels the response, pipecat truncates
what was played).

Typed text is a pipecat conversation's first context: a later
``LLMMessagesAppendFrame`` through the user aggregator only updates the
local context (pipecat 1.14 sends the realtime API nothing for it, on the
hosted API too), so each typed turn here opens its own pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from openai import AsyncOpenAI
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMMessagesAppendFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.workers.runner import WorkerRunner

from tests.compat.conftest import API_KEY, STORY, TOOL
from tests.server.conftest import LiveServer


#: Seconds any one step may take.
STEP = 20.0


class Recorder(FrameProcessor):
    """Passes frames on, keeping those that go one way."""

    def __init__(self, direction: FrameDirection) -> None:
        super().__init__()
        self.direction = direction
        self.frames: list[Frame] = []
        self._changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == self.direction:
            self.frames.append(frame)
            self._changed.set()
        await self.push_frame(frame, direction)

    async def wait(self, match: Callable[[Frame], bool], since: int) -> Frame:
        async with asyncio.timeout(STEP):
            while True:
                for frame in self.frames[since:]:
                    if match(frame):
                        return frame
                self._changed.clear()
                await self._changed.wait()

    def text(self, since: int) -> str:
        return "".join(
            f.text for f in self.frames[since:] if isinstance(f, TTSTextFrame)
        )


class Agent:
    """A running pipeline around the realtime service."""

    def __init__(self, worker: PipelineWorker, llm: Any, out: Recorder, up: Recorder):
        self.worker = worker
        self.llm = llm
        self.out = out  # what the service sends on (downstream)
        self.up = up  # what comes back to the start (upstream: errors)
        self.items: dict[str, Any] = {}
        self.calls: list[dict[str, Any]] = []

    async def say(self, text: str) -> None:
        await self.worker.queue_frames(
            [
                LLMMessagesAppendFrame(
                    messages=[{"role": "user", "content": text}], run_llm=True
                )
            ]
        )

    async def speak(self, pcm: bytes) -> None:
        for start in range(0, len(pcm), 4800):
            await self.worker.queue_frame(
                InputAudioRawFrame(
                    audio=pcm[start : start + 4800], sample_rate=24000, num_channels=1
                )
            )

    async def reply(self, since: int) -> str:
        """The transcript of the next reply, once it is done."""
        await self.out.wait(lambda f: isinstance(f, LLMFullResponseEndFrame), since)
        return self.out.text(since)

    def errors(self) -> list[Frame]:
        return [
            f for f in self.out.frames + self.up.frames if isinstance(f, ErrorFrame)
        ]


@asynccontextmanager
async def agent(live: LiveServer, api_key: str) -> AsyncIterator[Agent]:
    tool = FunctionSchema(
        name=TOOL["name"],
        description=TOOL["description"],
        properties=TOOL["parameters"]["properties"],
        required=TOOL["parameters"]["required"],
    )
    context = LLMContext(tools=ToolsSchema(standard_tools=[tool]))
    llm = OpenAIRealtimeLLMService(
        api_key=api_key,
        base_url=live.ws_url(),
        settings=OpenAIRealtimeLLMService.Settings(
            model="gpt-realtime", system_instruction="You are a weather assistant."
        ),
    )
    aggregators = LLMContextAggregatorPair(context)
    up, out = Recorder(FrameDirection.UPSTREAM), Recorder(FrameDirection.DOWNSTREAM)
    pipeline = Pipeline([up, aggregators.user(), llm, out, aggregators.assistant()])
    worker = PipelineWorker(
        pipeline, params=PipelineParams(), cancel_on_idle_timeout=False
    )
    running = Agent(worker, llm, out, up)

    async def get_weather(params: FunctionCallParams) -> None:
        running.calls.append(params.arguments)
        await params.result_callback({"sky": "sunny", "celsius": 22})

    llm.register_function("get_weather", get_weather)

    @llm.event_handler("on_conversation_item_updated")
    async def on_item(service: Any, item_id: str, item: Any) -> None:
        if item is not None:
            running.items[item_id] = item

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        yield running
    finally:
        await worker.cancel()
        async with asyncio.timeout(STEP):
            await task


async def test_text_and_spoken_turns(live: LiveServer, speech: bytes) -> None:
    """Connect, tools, the typed first turn, then a spoken turn."""
    async with agent(live, API_KEY) as bot:
        # the first context frame connects, sends the context (the typed
        # turn) and the tools, and asks for a response
        mark = len(bot.out.frames)
        await bot.say("Hello there")
        assert await bot.reply(mark) == "Hello from openrealtime."
        assert [f for f in bot.out.frames[mark:] if isinstance(f, TTSAudioRawFrame)]

        # a spoken turn, ended by server VAD
        mark = len(bot.out.frames)
        await bot.speak(speech)
        assert await bot.reply(mark) == "Hello from openrealtime."
        assert bot.errors() == []


async def test_tool_call(live: LiveServer) -> None:
    """The registered function answers the call; the model replies with it."""
    async with agent(live, API_KEY) as bot:
        mark = len(bot.out.frames)
        await bot.say("What is the weather in Paris?")
        # the function call's response ends, then the answer comes
        call_done = await bot.out.wait(
            lambda f: isinstance(f, LLMFullResponseEndFrame), mark
        )
        assert bot.calls == [{"city": "Paris"}]
        after = bot.out.frames.index(call_done) + 1
        assert await bot.reply(after) == "It is sunny in Paris, twenty two degrees."
        assert bot.errors() == []


async def test_interruption(live: LiveServer, speech: bytes) -> None:
    """The user talks over the reply: the server cancels it, pipecat truncates."""
    async with agent(live, API_KEY) as bot:
        mark = len(bot.out.frames)
        await bot.say("Tell me a story")
        await bot.out.wait(lambda f: isinstance(f, TTSAudioRawFrame), mark)
        await bot.speak(speech)
        await bot.out.wait(lambda f: isinstance(f, LLMFullResponseEndFrame), mark)
        (item,) = [
            i
            for i in bot.items.values()
            if i.type == "message" and i.role == "assistant"
        ][:1]
        assert item.status == "incomplete"
        heard = item.content[0].transcript
        assert STORY.startswith(heard) and len(heard) < len(STORY)
        # the item as the server keeps it, after the truncation
        retrieved = await bot.llm.retrieve_conversation_item(item.id)
        assert STORY.startswith(retrieved.content[0].transcript)
        assert len(retrieved.content[0].transcript) < len(STORY)
        assert bot.errors() == []


async def test_ephemeral_key(live: LiveServer) -> None:
    """An ``ek_`` key, made with the API key, is all the service needs."""
    async with AsyncOpenAI(api_key=API_KEY, base_url=live.http + "/v1") as client:
        secret = await client.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime"}
        )
    assert secret.value.startswith("ek_")
    async with agent(live, secret.value) as bot:
        mark = len(bot.out.frames)
        await bot.say("Hello")
        assert await bot.reply(mark) == "Hello from openrealtime."
        assert bot.errors() == []
