"""Shared helpers for the responder tests.

* :func:`make_request`: a :class:`ResponseRequest` with session defaults.
* ``chat_server``: a fake OpenAI-compatible Chat Completions server on a
  free loopback port (Starlette on uvicorn in a thread) that records each
  request body and answers with whatever the test scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openrealtime.models.items import ConversationItem, InputTextPart, MessageItem
from openrealtime.session import ResponseRequest


__all__ = ["ChatServer", "Reply", "make_request", "user"]

#: Upper bound for waiting on the server thread (start or stop), in seconds.
_WAIT = 10.0


def user(text: str) -> MessageItem:
    """A user message item with one input_text part."""
    return MessageItem(id="item_u", role="user", content=[InputTextPart(text=text)])


def make_request(
    conversation: list[ConversationItem] | None = None, **fields: Any
) -> ResponseRequest:
    """A ResponseRequest with the session defaults, overridden by ``fields``."""
    values: dict[str, Any] = {
        "response_id": "resp_1",
        "conversation": conversation if conversation is not None else [user("hi")],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "output_modalities": ["text"],
        "voice": "alloy",
        "speed": 1.0,
        "max_output_tokens": "inf",
        "metadata": None,
        "out_of_band": False,
    }
    values.update(fields)
    return ResponseRequest(**values)


def content(text: str) -> dict[str, Any]:
    """A streamed chunk carrying ``delta.content``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "fake",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


def tool_piece(index: int, **function: str) -> dict[str, Any]:
    """A streamed chunk carrying one ``delta.tool_calls`` piece.

    ``id`` goes on the piece, ``name`` and ``arguments`` on its function.
    """
    call_id = function.pop("id", None)
    piece: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        piece["id"] = call_id
        piece["type"] = "function"
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [
            {"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}
        ],
    }


@dataclass
class Reply:
    """What the fake server answers to the next request.

    Attributes:
        events: SSE data payloads (dicts are JSON-encoded; strings are sent
            as they are), each followed by a blank line.
        status: HTTP status; not 200 sends ``error`` as a JSON body.
        error: The body of an error reply.
        done: Whether ``data: [DONE]`` ends the stream.
        endless: After ``events``, keep streaming ``tick`` deltas until the
            client goes away.
        raw: Send this text as the whole body instead of ``events``.
        media_type: The reply's content type.
    """

    events: list[dict[str, Any] | str] = field(default_factory=list)
    status: int = 200
    error: Any = None
    done: bool = True
    endless: bool = False
    raw: str | None = None
    media_type: str = "text/event-stream"


class ChatServer:
    """The fake Chat Completions server's state, shared with its thread."""

    def __init__(self) -> None:
        self.port = 0
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.replies: list[Reply] = []
        #: Set when a streamed reply's generator ends for any reason (the
        #: client closing the connection included).
        self.stream_closed = threading.Event()
        #: Ticks sent by an endless reply.
        self.ticks = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, *replies: Reply) -> None:
        """Forget past requests and script the next replies."""
        self.bodies.clear()
        self.headers.clear()
        self.replies = list(replies)
        self.stream_closed.clear()
        self.ticks = 0

    async def endpoint(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.status != 200:
            return JSONResponse(reply.error, status_code=reply.status)
        if reply.raw is not None:
            return Response(reply.raw, media_type=reply.media_type)
        return StreamingResponse(self._stream(reply), media_type=reply.media_type)

    async def _stream(self, reply: Reply) -> Any:
        try:
            for event in reply.events:
                data = event if isinstance(event, str) else json.dumps(event)
                yield f"data: {data}\n\n"
            while reply.endless:
                self.ticks += 1
                yield f"data: {json.dumps(content('tick'))}\n\n"
                await asyncio.sleep(0.005)
            if reply.done:
                yield "data: [DONE]\n\n"
        finally:
            self.stream_closed.set()


@contextlib.contextmanager
def running_chat_server() -> Iterator[ChatServer]:
    """Run a fake Chat Completions server in a thread until the block ends."""
    chat = ChatServer()
    app = Starlette(
        routes=[Route("/v1/chat/completions", chat.endpoint, methods=["POST"])]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    chat.port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        ws="none",
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _WAIT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake chat server did not start")
            time.sleep(0.01)
        yield chat
    finally:
        server.should_exit = True
        thread.join(_WAIT)
        sock.close()


@pytest.fixture(scope="module")
def _chat_server_module() -> Iterator[ChatServer]:
    with running_chat_server() as chat:
        yield chat


@pytest.fixture
def chat_server(_chat_server_module: ChatServer) -> ChatServer:
    """The module's fake Chat Completions server, reset for this test."""
    _chat_server_module.reset()
    return _chat_server_module
