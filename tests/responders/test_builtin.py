"""The built-in responders under issue 13's rules: tool_choice, interleaved
transcripts, pacing, early stops and failures that say why."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import jsonschema
import pytest

from openrealtime.models.session import FunctionTool, ToolChoiceFunction
from openrealtime.responders.base import (
    AudioChunk,
    Chunk,
    FunctionCallChunk,
    ResponderError,
    StopChunk,
    TextChunk,
    apply_chunk,
    failure,
    spoken_as_tone,
)
from openrealtime.responders.chat import ChatCompletionError
from openrealtime.responders.echo import EchoResponder, forced_tool, minimal_value
from openrealtime.responders.pacing import PacedResponder, paced
from openrealtime.responders.scripted import ScriptedResponder, load_fixture
from openrealtime.responders.voice import SpeakingResponder
from openrealtime.session import ResponseRequest
from openrealtime.voice.tts import SynthesisError
from tests.helpers import new_session, send
from tests.responders.conftest import ChatServer, Reply, content, make_request
from tests.responders.test_chat import responder as chat_responder


async def collect(stream: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in stream]


def audio_ms(chunks: Sequence[Chunk]) -> float:
    return sum(len(c.pcm16) / 48 for c in chunks if isinstance(c, AudioChunk))


# --- Transcript and audio move together ------------------------------------------


def test_spoken_as_tone_spreads_the_words_over_the_audio() -> None:
    text = "  Hello there, how are you?"
    chunks = list(spoken_as_tone(text, 1500))
    texts = [c.text for c in chunks if isinstance(c, TextChunk)]
    assert "".join(texts) == text
    assert texts[0] == "  Hello "
    # Each word comes just before the chunk in which it starts (every 300 ms).
    kinds = ["T" if isinstance(c, TextChunk) else "A" for c in chunks]
    assert "".join(kinds) == "TAAATAAATAAATAAATAAA"
    assert audio_ms(chunks) == 1500
    # No words: audio only.
    assert all(isinstance(c, AudioChunk) for c in spoken_as_tone("", 200))
    silent = list(spoken_as_tone("", 250, "silence"))
    assert [len(c.pcm16) for c in silent] == [4800, 4800, 2400]  # type: ignore[union-attr]
    assert not any(any(c.pcm16) for c in silent)  # type: ignore[union-attr]


async def test_echo_in_audio_interleaves_the_transcript() -> None:
    request = make_request(output_modalities=["audio"])
    chunks = await collect(EchoResponder().respond(request))
    assert isinstance(chunks[0], TextChunk) and chunks[0].text == "hi"
    assert audio_ms(chunks) == 200


async def test_scripted_reply_is_interleaved_with_its_audio() -> None:
    fixture = load_fixture(
        {"default": {"text": "one two three four", "audio": {"ms": 400}}}
    )
    chunks = await collect(
        ScriptedResponder(fixture).respond(make_request(output_modalities=["audio"]))
    )
    kinds = [type(c).__name__[0] for c in chunks]
    assert kinds == ["T", "A"] * 4
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == [
        "one ",
        "two ",
        "three ",
        "four",
    ]


async def test_cancelled_transcript_is_what_was_streamed_end_to_end() -> None:
    """Echo chunks through the engine, cancelled halfway."""
    session = new_session()
    send(
        session,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "alpha beta gamma delta"}],
            },
        },
    )
    send(session, {"type": "response.create"})
    (action,) = session.actions_to_take()
    request = action.request  # type: ignore[union-attr]
    chunks = await collect(EchoResponder().respond(request))
    half = len(chunks) // 2
    for chunk in chunks[:half]:
        apply_chunk(session, request.response_id, chunk)
    streamed = "".join(c.text for c in chunks[:half] if isinstance(c, TextChunk))
    events = send(session, {"type": "response.cancel"})
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["output"][0]["content"][0]["transcript"] == streamed
    assert 0 < len(streamed) < len("alpha beta gamma delta")


# --- tool_choice ----------------------------------------------------------------------

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "lat": {"type": "number", "exclusiveMinimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "code": {"type": "string", "minLength": 3},
            "when": {"type": "string", "format": "date-time"},
            "flag": {"type": "boolean"},
            "none": {"type": "null"},
            "fixed": {"const": "v1"},
            "either": {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "null"}]},
            "one": {"oneOf": [{"type": "string", "format": "email"}]},
            "step": {"type": "integer", "multipleOf": 5, "exclusiveMinimum": 0},
            "fstep": {"type": "number", "multipleOf": 0.5, "minimum": 0.2},
            "neg": {"type": "integer", "maximum": -3},
            "half": {"type": "integer", "minimum": 1.5},
            "nullable": {"type": ["null", "string"], "minLength": 1},
            "pair": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 3,
            },
            "address": {"$ref": "#/$defs/address"},
            "both": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}},
                    {"required": ["a"]},
                    {"properties": {"b": {"type": "string"}}, "required": ["b"]},
                ]
            },
            "some": {
                "type": "object",
                "properties": {"x": {"type": "string"}},
                "minProperties": 1,
            },
            "anything": {},
            "float": {"type": "number"},
            "fmin": {"type": "number", "exclusiveMinimum": 0.5},
        },
        "required": [
            "unit",
            "days",
            "lat",
            "tags",
            "code",
            "when",
            "flag",
            "none",
            "fixed",
            "either",
            "one",
            "step",
            "fstep",
            "neg",
            "half",
            "nullable",
            "pair",
            "address",
            "both",
            "some",
            "anything",
            "float",
            "fmin",
        ],
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}},
                "required": ["street"],
            }
        },
    },
    {"type": "object", "properties": {}},
    {"properties": {"q": {"type": "string"}}, "required": ["q"]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_minimal_value_satisfies_the_schema(schema: dict[str, Any]) -> None:
    value = minimal_value(schema)
    jsonschema.validate(value, schema)


def test_minimal_value_edges() -> None:
    assert minimal_value({"type": "object", "properties": {"a": {}}}) == {}
    assert minimal_value("not a schema") == {}
    assert minimal_value({"$ref": "#/definitions/x~1y"}) == {}
    root = {"definitions": {"x/y": {"type": "integer", "minimum": 4}}}
    assert minimal_value({"$ref": "#/definitions/x~1y"}, root) == 4
    assert minimal_value({"type": []}) == {}
    assert minimal_value({"enum": ["b", "a"]}) == "b"
    loop: dict[str, Any] = {"$ref": "#"}
    assert minimal_value(loop) == {}


def tool(name: str, parameters: dict[str, Any] | None = None) -> FunctionTool:
    if parameters is None:
        return FunctionTool(name=name)
    return FunctionTool(name=name, parameters=parameters)


@pytest.mark.parametrize("modalities", [["text"], ["audio"]])
async def test_echo_calls_the_required_tool(modalities: list[str]) -> None:
    tools = [tool("get_weather", SCHEMAS[0]), tool("other")]
    request = make_request(
        tools=tools, tool_choice="required", output_modalities=modalities
    )
    (call,) = await collect(EchoResponder().respond(request))
    assert isinstance(call, FunctionCallChunk)
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), SCHEMAS[0])


async def test_echo_calls_the_named_tool() -> None:
    tools = [tool("a", SCHEMAS[0]), tool("b", SCHEMAS[1]), tool("c")]
    for name, schema in (("b", SCHEMAS[1]), ("c", {})):
        request = make_request(tools=tools, tool_choice=ToolChoiceFunction(name=name))
        (call,) = await collect(EchoResponder().respond(request))
        assert isinstance(call, FunctionCallChunk) and call.name == name
        jsonschema.validate(json.loads(call.arguments), schema)


def test_forced_tool() -> None:
    tools = [tool("a")]
    assert forced_tool(make_request(tools=tools)) is None
    assert forced_tool(make_request(tools=[], tool_choice="required")) is None
    missing = make_request(tools=tools, tool_choice=ToolChoiceFunction(name="z"))
    assert forced_tool(missing) is None
    assert forced_tool(make_request(tools=tools, tool_choice="none")) is None


async def test_echo_call_goes_through_the_engine() -> None:
    session = new_session()
    send(
        session,
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "tools": [
                    {"type": "function", "name": "lookup", "parameters": SCHEMAS[0]}
                ],
                "tool_choice": "required",
            },
        },
    )
    send(session, {"type": "response.create"})
    (action,) = session.actions_to_take()
    request = action.request  # type: ignore[union-attr]
    for chunk in await collect(EchoResponder().respond(request)):
        apply_chunk(session, request.response_id, chunk)
    session.response_done(request.response_id)
    events = [json.loads(d) for d in session.data_to_send()]
    done = next(
        e for e in events if e["type"] == "response.function_call_arguments.done"
    )
    assert (done["name"], json.loads(done["arguments"])) == ("lookup", {"city": ""})


async def test_scripted_call_of_an_undeclared_tool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fixture = load_fixture(
        {
            "default": {
                "text": "Checking.",
                "function_calls": [
                    {"name": "get_weather", "arguments": {"city": "Paris"}},
                    {"name": "get_time", "arguments": "{}"},
                ],
            }
        }
    )
    request = make_request(tools=[tool("get_time")])
    with caplog.at_level(logging.WARNING, logger="openrealtime.responders"):
        chunks = await collect(ScriptedResponder(fixture).respond(request))
    assert chunks == [TextChunk("Checking."), FunctionCallChunk("get_time", "{}")]
    assert (
        "the fixture calls 'get_weather', which the client did not declare as a "
        "function tool (declared: get_time); the call is left out"
    ) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="openrealtime.responders"):
        await collect(ScriptedResponder(fixture).respond(make_request()))
    assert "(declared: none)" in caplog.text


# --- Pacing ---------------------------------------------------------------------------


class Tones:
    """Yields ``count`` chunks of 100 ms with a word before each."""

    def __init__(self, count: int, pace: float | None = None) -> None:
        self.count = count
        self.pace = pace
        self.closed = False

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        try:
            for i in range(self.count):
                yield TextChunk(f"w{i} ")
                yield AudioChunk(b"\x00\x00" * 2400)
        finally:
            self.closed = True


async def timed(responder: Any) -> tuple[float, list[Chunk]]:
    began = time.monotonic()
    chunks = await collect(responder.respond(make_request()))
    return time.monotonic() - began, chunks


async def test_pace_one_streams_in_real_time() -> None:
    inner = Tones(5)
    elapsed, chunks = await timed(PacedResponder(inner, 1.0))
    # The last chunk goes out when the first four have played: 400 ms.
    assert elapsed >= 0.39
    assert len(chunks) == 10 and inner.closed


async def test_pace_is_a_multiple_of_real_time() -> None:
    elapsed, _ = await timed(PacedResponder(Tones(5), 4.0))
    assert elapsed >= 0.099


async def test_pace_zero_is_no_pacing() -> None:
    inner = Tones(3)
    assert paced(inner, 0) is inner
    # A responder's own pace wins: the fixture's 0 over the server's 1.
    own = Tones(3, pace=0)
    assert paced(own, 1.0) is own
    slow = Tones(3, pace=2.0)
    wrapped = paced(slow, 0)
    assert isinstance(wrapped, PacedResponder) and wrapped.pace == 2.0
    with pytest.raises(ValueError, match="pace must be >= 0"):
        PacedResponder(inner, -1)


async def test_closing_the_paced_stream_closes_the_inner_one() -> None:
    inner = Tones(50)
    stream = PacedResponder(inner, 1.0).respond(make_request())
    assert isinstance(await anext(stream), TextChunk)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert inner.closed


async def test_a_paced_reply_can_be_cancelled_as_a_task() -> None:
    inner = Tones(50)
    task = asyncio.create_task(
        collect(PacedResponder(inner, 1.0).respond(make_request()))
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inner.closed


def test_fixture_pace() -> None:
    fixture = load_fixture({"pace": 0, "default": {"text": "x"}})
    assert ScriptedResponder(fixture).pace == 0
    assert ScriptedResponder(load_fixture({})).pace is None
    with pytest.raises(ValueError, match="pace must be >= 0"):
        load_fixture({"pace": -2})
    # Speech keeps the inner responder's pace.
    speaking = SpeakingResponder(ScriptedResponder(fixture), synthesizer=None)  # type: ignore[arg-type]
    assert speaking.pace == 0
    assert SpeakingResponder(EchoResponder(), synthesizer=None).pace is None  # type: ignore[arg-type]


# --- Early stops and failures ---------------------------------------------------------


def finish(reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "fake",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
    }


@pytest.mark.parametrize(
    ("reason", "stop"),
    [
        ("length", StopChunk("max_output_tokens")),
        ("content_filter", StopChunk("content_filter")),
    ],
)
async def test_chat_finish_reason_ends_incomplete(
    chat_server: ChatServer, reason: str, stop: StopChunk
) -> None:
    chat_server.reset(Reply(events=[content("Cut"), finish(reason)]))
    chunks = await collect(chat_responder(chat_server).respond(make_request()))
    assert chunks == [TextChunk("Cut"), stop]


async def test_chat_finish_reason_stop_is_complete(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=[content("Done"), finish("stop")]))
    chunks = await collect(chat_responder(chat_server).respond(make_request()))
    assert chunks == [TextChunk("Done")]


async def test_length_through_the_engine(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=[content("Cut"), finish("length")]))
    session = new_session()
    send(
        session,
        {"type": "response.create", "response": {"output_modalities": ["text"]}},
    )
    (action,) = session.actions_to_take()
    request = action.request  # type: ignore[union-attr]
    async for chunk in chat_responder(chat_server).respond(request):
        apply_chunk(session, request.response_id, chunk)
    session.response_done(request.response_id)  # the driver's: too late, ignored
    events = [json.loads(d) for d in session.data_to_send()]
    (done,) = [e for e in events if e["type"] == "response.done"]
    assert done["response"]["status_details"] == {
        "type": "incomplete",
        "reason": "max_output_tokens",
    }


class Stopping:
    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        yield TextChunk("Short. ")
        yield StopChunk("max_output_tokens")
        yield TextChunk("never")


class Silent:
    """A synthesizer that returns 100 ms of silence for any text."""

    def synthesize(self, text: str, *, voice: str, speed: float) -> Any:
        yield b"\x00\x00" * 2400


async def test_speech_passes_an_early_stop_on_after_the_audio() -> None:
    speaking = SpeakingResponder(Stopping(), Silent())
    chunks = await collect(speaking.respond(make_request(output_modalities=["audio"])))
    assert chunks[-1] == StopChunk("max_output_tokens")
    assert TextChunk("never") not in chunks
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == ["Short.", " "]


def test_failure_says_why() -> None:
    chat = ChatCompletionError(
        "cannot connect to http://10.0.0.1/v1: refused",
        code="llm_unreachable",
        client_message="The language model is unreachable: refused",
    )
    assert failure(chat).type == "server_error"
    assert failure(chat).code == "llm_unreachable"
    assert failure(chat).message == "The language model is unreachable: refused"
    assert failure(ChatCompletionError("bad stream")).code == "llm_error"
    assert failure(ChatCompletionError("bad stream")).message == "bad stream"
    speech = failure(SynthesisError("cannot run espeak-ng: not found"))
    assert (speech.code, speech.message) == (
        "speech_unavailable",
        "The speech engine failed: cannot run espeak-ng: not found",
    )
    generic = failure(KeyError("secret"))
    assert (generic.code, generic.message) == (
        "responder_failed",
        "The server failed to produce this response.",
    )
    assert failure(ResponderError("no")).code == "responder_failed"
