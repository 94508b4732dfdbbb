"""The ``chat`` responder: any OpenAI-compatible Chat Completions endpoint.

Ollama, vLLM, llama.cpp's server, LM Studio and OpenAI itself all serve
``POST {base_url}/chat/completions`` with ``stream: true`` as server-sent
events. :class:`ChatResponder` turns a
:class:`~openrealtime.session.ResponseRequest` into such a request and the
streamed reply into chunks:

=================================  ==========================================
Realtime                           Chat Completions
=================================  ==========================================
``instructions``                   first ``system`` message
user ``input_text`` / transcripts  ``user`` message (images as ``image_url``)
assistant text / audio transcript  ``assistant`` message
system message item                ``system`` message
``function_call`` items            ``tool_calls`` of an ``assistant`` message
``function_call_output``           ``tool`` message with ``tool_call_id``
function ``tools``                 ``tools: [{type: function, function}]``
``tool_choice``                    ``auto`` / ``none`` / ``required`` /
                                   ``{type: function, function: {name}}``
``max_output_tokens`` (an int)     ``max_tokens``
=================================  ==========================================

Streamed ``delta.content`` becomes :class:`TextChunk` s as it arrives;
``delta.tool_calls`` pieces are gathered by ``index`` and become one
:class:`FunctionCallChunk` each when the stream ends. MCP tools and items
have no Chat Completions form and are left out; user audio without a
transcript is left out (the model could not hear it anyway).

Any failure (an error status, a refused connection, a timeout, an error
event in the stream, a malformed stream) raises :class:`ChatCompletionError`,
which the server turns into a failed response. Closing the generator
(``aclose``, task cancellation) closes the HTTP stream, which tells the
model server to stop generating.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from openrealtime.models.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudioPart,
    InputImagePart,
    InputTextPart,
    MessageItem,
    OutputAudioPart,
    OutputTextPart,
)
from openrealtime.models.session import FunctionTool, ToolChoiceFunction
from openrealtime.responders.base import (
    Chunk,
    FunctionCallChunk,
    ResponderError,
    StopChunk,
    TextChunk,
)
from openrealtime.session import ResponseRequest


__all__ = [
    "ChatCompletionError",
    "ChatResponder",
    "build_messages",
    "build_request",
    "parse_sse",
]

#: Seconds to wait for a connection and for each read of the stream.
DEFAULT_TIMEOUT: Final = 120.0
#: Characters of an error body kept in a :class:`ChatCompletionError`.
_ERROR_BODY_CHARS: Final = 500
#: Parameters given to a function tool that declares none.
_NO_PARAMETERS: Final[Mapping[str, Any]] = {"type": "object", "properties": {}}


class ChatCompletionError(ResponderError):
    """The Chat Completions endpoint failed or could not be reached.

    Attributes:
        status_code: The HTTP status of the reply, or None when there was
            no reply (connection refused, timeout) or it failed mid-stream.
    """

    code = "llm_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        client_message: str | None = None,
    ) -> None:
        super().__init__(message, code=code, client_message=client_message)
        self.status_code = status_code


# --- Request ---------------------------------------------------------------------


def _user_content(
    item: MessageItem,
) -> str | list[dict[str, Any]] | None:
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    has_image = False
    for part in item.content:
        if isinstance(part, InputTextPart):
            text: str | None = part.text
        elif isinstance(part, InputAudioPart) and isinstance(part.transcript, str):
            text = part.transcript
        elif isinstance(part, (OutputTextPart, OutputAudioPart)):
            text = _assistant_text(part)
        elif isinstance(part, InputImagePart) and isinstance(part.image_url, str):
            image: dict[str, Any] = {"url": part.image_url}
            if isinstance(part.detail, str):
                image["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": image})
            has_image = True
            continue
        else:
            continue
        if text:
            texts.append(text)
            parts.append({"type": "text", "text": text})
    if has_image:
        return parts
    # Plain string content: the form every compatible server accepts.
    return "\n".join(texts) if texts else None


def _assistant_text(part: OutputTextPart | OutputAudioPart) -> str | None:
    if isinstance(part, OutputTextPart):
        return part.text if isinstance(part.text, str) else None
    return part.transcript if isinstance(part.transcript, str) else None


def _call_id(item: FunctionCallItem, position: int) -> str:
    if isinstance(item.call_id, str):
        return item.call_id
    if isinstance(item.id, str):
        return item.id
    return f"call_{position}"


def build_messages(
    instructions: str, conversation: Iterable[ConversationItem]
) -> list[dict[str, Any]]:
    """Map instructions and conversation items to Chat Completions messages.

    Consecutive ``function_call`` items join the ``tool_calls`` of the
    assistant message just before them (or of a new one), which is how
    Chat Completions represents one model turn that calls tools. A
    ``function_call_output`` becomes a ``tool`` message.

    Args:
        instructions: The effective instructions; blank ones are left out.
        conversation: The conversation items, oldest first.

    Returns:
        The ``messages`` array.
    """
    messages: list[dict[str, Any]] = []
    if instructions.strip():
        messages.append({"role": "system", "content": instructions})
    for position, item in enumerate(conversation):
        if isinstance(item, MessageItem):
            if item.role == "assistant":
                texts = [
                    t
                    for part in item.content
                    if isinstance(part, (OutputTextPart, OutputAudioPart))
                    and (t := _assistant_text(part))
                ]
                if texts:
                    messages.append({"role": "assistant", "content": "".join(texts)})
                continue
            content = _user_content(item)
            if content is not None:
                messages.append({"role": item.role, "content": content})
        elif isinstance(item, FunctionCallItem):
            call = {
                "id": _call_id(item, position),
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append(
                    {"role": "assistant", "content": None, "tool_calls": [call]}
                )
        elif isinstance(item, FunctionCallOutputItem):
            messages.append(
                {"role": "tool", "tool_call_id": item.call_id, "content": item.output}
            )
    return messages


def build_request(
    request: ResponseRequest,
    model: str,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the JSON body of a streamed Chat Completions request.

    ``tools`` and ``tool_choice`` are sent only when the request has
    function tools (OpenAI rejects a ``tool_choice`` without ``tools``);
    ``auto`` is the default and is left out. A choice of an MCP tool has no
    equivalent and is left out too. ``extra_body`` is merged last, so it
    can set sampling options or override anything.

    Args:
        request: What to respond to.
        model: The endpoint's model name.
        extra_body: Extra top-level fields.

    Returns:
        The request body.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": build_messages(request.instructions, request.conversation),
        "stream": True,
    }
    tools = [
        {"type": "function", "function": _function(tool)}
        for tool in request.tools
        if isinstance(tool, FunctionTool)
    ]
    if tools:
        body["tools"] = tools
        choice = request.tool_choice
        if isinstance(choice, ToolChoiceFunction):
            body["tool_choice"] = {
                "type": "function",
                "function": {"name": choice.name},
            }
        elif choice in ("none", "required"):
            body["tool_choice"] = choice
    if isinstance(request.max_output_tokens, int):
        body["max_tokens"] = request.max_output_tokens
    if extra_body:
        body.update(extra_body)
    return body


def _function(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if isinstance(tool.description, str):
        function["description"] = tool.description
    # Some servers (llama.cpp, older vLLM) require parameters.
    function["parameters"] = (
        tool.parameters if isinstance(tool.parameters, dict) else dict(_NO_PARAMETERS)
    )
    return function


# --- Response --------------------------------------------------------------------


async def parse_sse(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """Yield the data of each server-sent event, up to ``[DONE]``.

    Follows the SSE rules that matter here: ``data:`` lines (one optional
    space after the colon) of one event are joined with newlines, a blank
    line ends an event, comment lines (``:``) and other fields (``event:``,
    ``id:``, ``retry:``) are skipped, and a last event without its blank
    line still counts.

    Args:
        lines: The body's lines, without line endings.

    Yields:
        Each event's data; stops at ``[DONE]``.
    """
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == "[DONE]":
                    return
                yield payload
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        payload = "\n".join(data)
        if payload.strip() != "[DONE]":
            yield payload


@dataclass(slots=True)
class _Call:
    id: str | None = None
    name: str = ""
    arguments: str = ""


def _gather_calls(calls: dict[int, _Call], pieces: object) -> None:
    if not isinstance(pieces, list):
        return
    for position, piece in enumerate(pieces):
        if not isinstance(piece, dict):
            continue
        index = piece.get("index", position)
        call = calls.setdefault(index if isinstance(index, int) else position, _Call())
        if isinstance(piece.get("id"), str) and piece["id"]:
            call.id = piece["id"]
        function = piece.get("function")
        if not isinstance(function, dict):
            continue
        name = function.get("name")
        # OpenAI sends the name once; some servers repeat it in every piece.
        if isinstance(name, str) and name and name != call.name:
            call.name += name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments += arguments
        elif isinstance(arguments, dict):  # Ollama's native shape
            call.arguments += json.dumps(arguments)


def _error_message(body: object, *, detail: bool = False) -> str | None:
    """The message of an error body: OpenAI's, Ollama's or (``detail``) FastAPI's."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if detail and isinstance(body.get("detail"), str):
            return str(body["detail"])
    return None


def _decode(payload: str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        raise ChatCompletionError(
            f"the chat endpoint sent an event that is not JSON: {payload[:200]!r}"
        ) from None
    if not isinstance(data, dict):
        raise ChatCompletionError(
            f"the chat endpoint sent an event that is not an object: {payload[:200]!r}"
        )
    if (message := _error_message(data)) is not None:
        raise ChatCompletionError(f"the chat endpoint failed: {message}")
    return data


def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = data.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                return choice
    return {}


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


class ChatResponder:
    """Responds with a model behind an OpenAI-compatible Chat Completions API.

    A client is opened per response (and closed with it), so a responder
    needs no cleanup; pass ``client`` to share one connection pool instead
    (its owner closes it).

    Args:
        base_url: The API root, e.g. ``http://localhost:11434/v1`` (Ollama)
            or ``https://api.openai.com/v1``; ``/chat/completions`` is added.
        model: The model name the endpoint knows.
        api_key: Sent as ``Authorization: Bearer ...`` when given.
        timeout: Seconds to wait to connect and for each read (a reply may
            take longer in total); None waits forever.
        extra_body: Extra request fields (``temperature``, ``seed``, an
            Ollama ``options`` object...), merged over the mapped ones.
        client: An ``httpx.AsyncClient`` to use instead of one per response.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        extra_body: Mapping[str, Any] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.extra_body = dict(extra_body) if extra_body else None
        self.client = client

    def headers(self) -> dict[str, str]:
        """The request headers (with the API key, if any)."""
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Stream one response from the endpoint.

        Args:
            request: What to respond to.

        Yields:
            Text chunks as they arrive, then one function call chunk per
            tool call.

        Raises:
            ChatCompletionError: The endpoint failed or could not be reached.
        """
        body = build_request(request, self.model, self.extra_body)
        calls: dict[int, _Call] = {}
        finish: object = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = self.client
                if client is None:
                    client = await stack.enter_async_context(
                        httpx.AsyncClient(timeout=self.timeout)
                    )
                response = await stack.enter_async_context(
                    client.stream(
                        "POST",
                        self.url,
                        json=body,
                        headers=self.headers(),
                        timeout=self.timeout,
                    )
                )
                if response.status_code >= 400:
                    raise await self._status_error(response)
                content_type = response.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    # A server that ignored ``stream``: one whole completion.
                    raw = await response.aread()
                    data = _decode(raw.decode("utf-8", "replace"))
                    choice = _first_choice(data)
                    finish = choice.get("finish_reason") or finish
                    message = choice.get("message") or {}
                    if isinstance(message.get("content"), str) and message["content"]:
                        yield TextChunk(message["content"])
                    _gather_calls(calls, message.get("tool_calls"))
                else:
                    events = await stack.enter_async_context(
                        contextlib.aclosing(parse_sse(response.aiter_lines()))
                    )
                    async for payload in events:
                        choice = _first_choice(_decode(payload))
                        finish = choice.get("finish_reason") or finish
                        delta = choice.get("delta") or {}
                        for key in ("content", "refusal"):
                            text = delta.get(key)
                            if isinstance(text, str) and text:
                                yield TextChunk(text)
                        _gather_calls(calls, delta.get("tool_calls"))
        except httpx.TimeoutException as exc:
            raise ChatCompletionError(
                f"the chat endpoint {self.url} timed out ({type(exc).__name__})",
                code="llm_unreachable",
                client_message="The language model did not answer in time.",
            ) from exc
        except httpx.ConnectError as exc:
            raise ChatCompletionError(
                f"cannot connect to the chat endpoint {self.url}: {_reason(exc)}",
                code="llm_unreachable",
                client_message=f"The language model is unreachable: {_reason(exc)}",
            ) from exc
        except httpx.HTTPError as exc:
            raise ChatCompletionError(
                f"the chat endpoint {self.url} failed: {_reason(exc)}",
                client_message=f"The language model failed: {_reason(exc)}",
            ) from exc
        for index in sorted(calls):
            call = calls[index]
            if not call.name:
                raise ChatCompletionError(
                    "the chat endpoint sent a tool call without a name"
                )
            yield FunctionCallChunk(call.name, call.arguments or "{}", call_id=call.id)
        # The model stopped early: the response is incomplete.
        if finish == "length":
            yield StopChunk("max_output_tokens")
        elif finish == "content_filter":
            yield StopChunk("content_filter")

    async def _status_error(self, response: httpx.Response) -> ChatCompletionError:
        raw = (await response.aread()).decode("utf-8", "replace")
        try:
            detail = _error_message(json.loads(raw), detail=True)
        except json.JSONDecodeError:
            detail = None
        detail = detail or raw.strip()[:_ERROR_BODY_CHARS] or response.reason_phrase
        return ChatCompletionError(
            f"the chat endpoint {self.url} answered {response.status_code}: {detail}",
            status_code=response.status_code,
            client_message=f"The language model answered {response.status_code}: "
            f"{detail}",
        )
