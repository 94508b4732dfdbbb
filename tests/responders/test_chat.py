"""ChatResponder against a fake OpenAI-compatible Chat Completions server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from openrealtime.models.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudioPart,
    InputImagePart,
    InputTextPart,
    MCPListToolsItem,
    MessageItem,
    OutputAudioPart,
    OutputTextPart,
)
from openrealtime.models.session import (
    FunctionTool,
    MCPTool,
    ToolChoiceFunction,
    ToolChoiceMCP,
)
from openrealtime.responders.base import Chunk, FunctionCallChunk, TextChunk
from openrealtime.responders.chat import (
    ChatCompletionError,
    ChatResponder,
    build_messages,
    parse_sse,
)
from tests.responders.conftest import (
    ChatServer,
    Reply,
    content,
    make_request,
    tool_piece,
    user,
)


__all__: list[str] = []

WEATHER = FunctionTool(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def responder(chat: ChatServer, **kwargs: Any) -> ChatResponder:
    return ChatResponder(chat.base_url, "fake-model", **kwargs)


async def collect(stream: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in stream]


# --- Streaming text ------------------------------------------------------------------


async def test_text_streams_as_chunks_in_order(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=[content("Hel"), content("lo"), content("!")]))
    chunks = await collect(responder(chat_server).respond(make_request()))
    assert chunks == [TextChunk("Hel"), TextChunk("lo"), TextChunk("!")]


async def test_request_is_a_streamed_chat_completion(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=[content("ok")]))
    chat = responder(chat_server, api_key="sk-local", extra_body={"temperature": 0.2})
    await collect(chat.respond(make_request(instructions="Be brief.")))
    (body,) = chat_server.bodies
    assert body == {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "temperature": 0.2,
    }
    assert chat_server.headers[0]["authorization"] == "Bearer sk-local"


async def test_no_api_key_sends_no_authorization(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=[content("ok")]))
    await collect(responder(chat_server).respond(make_request()))
    assert "authorization" not in chat_server.headers[0]


async def test_stream_without_done_still_ends(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=[content("a"), content("b")], done=False))
    chunks = await collect(responder(chat_server).respond(make_request()))
    assert chunks == [TextChunk("a"), TextChunk("b")]


async def test_empty_deltas_and_role_only_chunks_are_skipped(
    chat_server: ChatServer,
) -> None:
    role_only = {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    usage_only = {"choices": [], "usage": {"total_tokens": 3}}
    chat_server.reset(Reply(events=[role_only, content(""), content("x"), usage_only]))
    chunks = await collect(responder(chat_server).respond(make_request()))
    assert chunks == [TextChunk("x")]


async def test_shared_client_is_used_and_left_open(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=[content("one")]), Reply(events=[content("two")]))
    async with httpx.AsyncClient() as client:
        chat = responder(chat_server, client=client)
        first = await collect(chat.respond(make_request()))
        second = await collect(chat.respond(make_request()))
        assert not client.is_closed
    assert first + second == [TextChunk("one"), TextChunk("two")]


async def test_non_streamed_reply_is_accepted(chat_server: ChatServer) -> None:
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Whole.",
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
            }
        ]
    }
    chat_server.reset(Reply(raw=json.dumps(completion), media_type="application/json"))
    chunks = await collect(responder(chat_server).respond(make_request()))
    assert chunks == [TextChunk("Whole."), FunctionCallChunk("f", "{}", "call_9")]


# --- Tool calls ------------------------------------------------------------------


async def test_tool_calls_streamed_in_pieces_come_whole_at_the_end(
    chat_server: ChatServer,
) -> None:
    chat_server.reset(
        Reply(
            events=[
                content("Checking."),
                tool_piece(0, id="call_a", name="get_weather", arguments=""),
                tool_piece(0, arguments='{"ci'),
                tool_piece(1, id="call_b", name="get_time", arguments='{"tz":'),
                tool_piece(0, arguments='ty": "Paris"}'),
                tool_piece(1, arguments=' "CET"}'),
            ]
        )
    )
    chunks = await collect(responder(chat_server).respond(make_request()))
    assert chunks == [
        TextChunk("Checking."),
        FunctionCallChunk("get_weather", '{"city": "Paris"}', call_id="call_a"),
        FunctionCallChunk("get_time", '{"tz": "CET"}', call_id="call_b"),
    ]


async def test_tool_call_without_id_or_arguments(chat_server: ChatServer) -> None:
    # Some servers omit the id, repeat the name, or send no arguments.
    chat_server.reset(
        Reply(events=[tool_piece(0, name="ping"), tool_piece(0, name="ping")])
    )
    chunks = await collect(responder(chat_server).respond(make_request()))
    assert chunks == [FunctionCallChunk("ping", "{}", call_id=None)]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        ("none", "none"),
        ("required", "required"),
        (
            ToolChoiceFunction(name="get_weather"),
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        (ToolChoiceMCP(server_label="deepwiki"), None),
    ],
    ids=["auto", "none", "required", "function", "mcp"],
)
async def test_tools_and_tool_choice_map_to_chat_completions(
    chat_server: ChatServer, choice: Any, expected: Any
) -> None:
    chat_server.reset(Reply(events=[content("ok")]))
    request = make_request(
        tools=[
            WEATHER,
            FunctionTool(name="get_time"),
            MCPTool(server_label="deepwiki", server_url="https://example.invalid"),
        ],
        tool_choice=choice,
        max_output_tokens=256,
    )
    await collect(responder(chat_server).respond(request))
    (body,) = chat_server.bodies
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    assert body.get("tool_choice") == expected
    assert body["max_tokens"] == 256


async def test_without_function_tools_neither_tools_nor_choice_is_sent(
    chat_server: ChatServer,
) -> None:
    chat_server.reset(Reply(events=[content("ok")]))
    request = make_request(
        tools=[MCPTool(server_label="deepwiki", server_url="https://example.invalid")],
        tool_choice="required",
    )
    await collect(responder(chat_server).respond(request))
    (body,) = chat_server.bodies
    assert "tools" not in body
    assert "tool_choice" not in body
    assert "max_tokens" not in body


async def test_function_call_output_round_trip(chat_server: ChatServer) -> None:
    conversation: list[ConversationItem] = [
        MessageItem(
            role="system", content=[InputTextPart(text="The user is in France.")]
        ),
        MessageItem(
            role="user",
            content=[InputAudioPart(audio="AAAA", transcript="What's the weather?")],
        ),
        MessageItem(
            role="assistant",
            content=[OutputAudioPart(transcript="Let me check.")],
        ),
        FunctionCallItem(
            id="item_f1",
            call_id="call_1",
            name="get_weather",
            arguments='{"city": "Paris"}',
        ),
        FunctionCallItem(id="item_f2", name="get_time", arguments=""),
        FunctionCallOutputItem(call_id="call_1", output='{"sky": "sunny"}'),
        FunctionCallOutputItem(call_id="item_f2", output="12:00"),
    ]
    chat_server.reset(Reply(events=[content("It is sunny.")]))
    chunks = await collect(
        responder(chat_server).respond(
            make_request(conversation, instructions="Be brief.", tools=[WEATHER])
        )
    )
    assert chunks == [TextChunk("It is sunny.")]
    assert chat_server.bodies[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "The user is in France."},
        {"role": "user", "content": "What's the weather?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    },
                },
                {
                    "id": "item_f2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'},
        {"role": "tool", "tool_call_id": "item_f2", "content": "12:00"},
    ]


def test_function_call_with_no_assistant_text_gets_its_own_message() -> None:
    messages = build_messages(
        "",
        [
            user("Weather?"),
            FunctionCallItem(call_id="call_1", name="get_weather", arguments="{}"),
            FunctionCallOutputItem(call_id="call_1", output="sunny"),
            MessageItem(role="assistant", content=[OutputTextPart(text="Sunny.")]),
        ],
    )
    assert messages == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ]


def test_message_content_mapping_edges() -> None:
    messages = build_messages(
        "   ",
        [
            # Audio not transcribed (yet): nothing the model could read.
            MessageItem(role="user", content=[InputAudioPart(audio="AAAA")]),
            MessageItem(
                role="user",
                content=[
                    InputTextPart(text="Look:"),
                    InputImagePart(image_url="data:image/png;base64,AA", detail="low"),
                ],
            ),
            MessageItem(
                role="user",
                content=[InputTextPart(text="one"), InputTextPart(text="two")],
            ),
            MessageItem(role="assistant", content=[OutputAudioPart(audio="AAAA")]),
            MCPListToolsItem(id="item_m", server_label="deepwiki", tools=[]),
        ],
    )
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
                },
            ],
        },
        {"role": "user", "content": "one\ntwo"},
    ]


# --- Errors ----------------------------------------------------------------------


async def test_error_status_raises_with_the_endpoint_message(
    chat_server: ChatServer,
) -> None:
    chat_server.reset(
        Reply(
            status=404,
            error={"error": {"message": "model 'nope' not found", "type": "x"}},
        )
    )
    with pytest.raises(
        ChatCompletionError, match="answered 404: model 'nope' not found"
    ) as info:
        await collect(responder(chat_server).respond(make_request()))
    assert info.value.status_code == 404


async def test_error_status_with_ollama_style_body(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(status=500, error={"error": "out of memory"}))
    with pytest.raises(ChatCompletionError, match="answered 500: out of memory"):
        await collect(responder(chat_server).respond(make_request()))


async def test_error_event_in_the_stream_raises(chat_server: ChatServer) -> None:
    chat_server.reset(
        Reply(events=[content("par"), {"error": {"message": "context too long"}}])
    )
    chunks: list[Chunk] = []
    with pytest.raises(ChatCompletionError, match="context too long"):
        async for chunk in responder(chat_server).respond(make_request()):
            chunks.append(chunk)
    assert chunks == [TextChunk("par")]


async def test_malformed_event_raises(chat_server: ChatServer) -> None:
    chat_server.reset(Reply(events=["{not json"]))
    with pytest.raises(ChatCompletionError, match="not JSON"):
        await collect(responder(chat_server).respond(make_request()))


async def test_connection_refused_raises() -> None:
    # A port that was free a moment ago and has no listener.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chat = ChatResponder(f"http://127.0.0.1:{port}/v1/", "m")
    assert chat.url == f"http://127.0.0.1:{port}/v1/chat/completions"
    with pytest.raises(ChatCompletionError, match="cannot connect") as info:
        await collect(chat.respond(make_request()))
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


# --- Cancellation ----------------------------------------------------------------


async def test_aclose_mid_stream_closes_the_http_stream(
    chat_server: ChatServer,
) -> None:
    chat_server.reset(Reply(events=[content("first")], endless=True))
    stream = responder(chat_server).respond(make_request())
    assert await anext(stream) == TextChunk("first")
    assert await anext(stream) == TextChunk("tick")
    await stream.aclose()  # type: ignore[attr-defined]
    # The server's generator ends only when the client went away.
    assert await asyncio.to_thread(chat_server.stream_closed.wait, 10.0)


async def test_task_cancel_mid_stream_closes_the_http_stream(
    chat_server: ChatServer,
) -> None:
    chat_server.reset(Reply(endless=True))
    got_one = asyncio.Event()

    async def consume() -> None:
        async for _ in responder(chat_server).respond(make_request()):
            got_one.set()

    task = asyncio.create_task(consume())
    await got_one.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(chat_server.stream_closed.wait, 10.0)


# --- SSE parsing -----------------------------------------------------------------


async def test_parse_sse_follows_the_event_stream_rules() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in [
            ": keep-alive comment",
            "event: message",
            "id: 1",
            'data: {"a":',
            "data:  1}",
            "",
            "",
            "data:no-space",
            "",
            "data: last without blank line",
        ]:
            yield line

    assert [e async for e in parse_sse(lines())] == [
        '{"a":\n 1}',
        "no-space",
        "last without blank line",
    ]


async def test_parse_sse_stops_at_done() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in ["data: 1", "", "data: [DONE]", "", "data: 2", ""]:
            yield line

    assert [e async for e in parse_sse(lines())] == ["1"]
