"""The ``echo`` responder: says back what the user last said.

Text comes back as text. In audio modality the reply's audio is a tone of
about 60 ms a character of the reply (at least 200 ms), in 100 ms chunks,
with the transcript's words spread over it (each word just before the chunk
in which it starts), so clients can test playback, truncation and barge-in
with no speech engine. How fast it streams is the server's ``pace``
(:mod:`openrealtime.responders.pacing`).

``tool_choice`` is honoured: with ``"required"`` (the first function tool)
or a named function, the reply is a call of that function whose arguments
are the smallest value its JSON schema accepts (:func:`minimal_value`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from openrealtime.models.items import (
    InputAudioPart,
    InputTextPart,
    MessageItem,
)
from openrealtime.models.session import FunctionTool, ToolChoiceFunction
from openrealtime.responders.base import (
    AudioChunk,
    Chunk,
    FunctionCallChunk,
    TextChunk,
    spoken_as_tone,
)
from openrealtime.session import ResponseRequest


__all__ = ["EchoResponder", "forced_tool", "last_user_turn", "minimal_value"]


def last_user_turn(request: ResponseRequest) -> tuple[str, bool]:
    """The text of the last user message, and whether it had untranscribed audio.

    Audio parts count by their transcript.
    """
    for item in reversed(request.conversation):
        if isinstance(item, MessageItem) and item.role == "user":
            texts: list[str] = []
            untranscribed = False
            for part in item.content:
                if isinstance(part, InputTextPart):
                    texts.append(part.text)
                elif isinstance(part, InputAudioPart):
                    if part.transcript:
                        texts.append(part.transcript)
                    else:
                        untranscribed = True
            return " ".join(t for t in texts if t), untranscribed
    return "", False


def forced_tool(request: ResponseRequest) -> FunctionTool | None:
    """The function ``tool_choice`` forces: a named one, or the first for
    ``"required"``; ``None`` when the model may answer in words."""
    functions = [t for t in request.tools if isinstance(t, FunctionTool)]
    choice = request.tool_choice
    if isinstance(choice, ToolChoiceFunction):
        return next((t for t in functions if t.name == choice.name), None)
    if choice == "required" and functions:
        return functions[0]
    return None


def minimal_value(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """The smallest value a JSON schema accepts (as far as one can be found).

    Objects get their required properties only, strings their minimum
    length (or the first ``enum``/``const``, or a value for a ``format``),
    numbers their lower bound (respecting ``multipleOf``), arrays their
    ``minItems``; ``anyOf``/``oneOf`` take the first choice, ``allOf``
    merges, ``$ref`` follows local references (``#/...``).
    """
    root = schema if root is None else root
    if not isinstance(schema, Mapping) or depth > 32:
        return {}
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        target: Any = root
        for key in ref.lstrip("#").strip("/").split("/"):
            if key:
                key = key.replace("~1", "/").replace("~0", "~")
                target = target.get(key, {}) if isinstance(target, Mapping) else {}
        return minimal_value(target, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        choices = schema.get(key)
        if isinstance(choices, list) and choices:
            return minimal_value(choices[0], root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if isinstance(part, Mapping):
                for k, v in part.items():
                    if k == "properties" and isinstance(v, Mapping):
                        merged["properties"] = {**merged.get("properties", {}), **v}
                    elif k == "required" and isinstance(v, list):
                        merged["required"] = [*merged.get("required", []), *v]
                    else:
                        merged.setdefault(k, v)
        return minimal_value(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else None
    match kind:
        case "object":
            properties = schema.get("properties")
            properties = properties if isinstance(properties, Mapping) else {}
            required = schema.get("required")
            names = required if isinstance(required, list) else []
            value = {
                name: minimal_value(properties.get(name, {}), root, depth + 1)
                for name in names
            }
            minimum = schema.get("minProperties")
            if isinstance(minimum, int):
                for name, sub in properties.items():
                    if len(value) >= minimum:
                        break
                    value.setdefault(name, minimal_value(sub, root, depth + 1))
            return value
        case "array":
            count = schema.get("minItems", 0)
            items = schema.get("items", {})
            if isinstance(schema.get("prefixItems"), list):
                prefix = [
                    minimal_value(i, root, depth + 1) for i in schema["prefixItems"]
                ]
                return prefix + [
                    minimal_value(items, root, depth + 1)
                    for _ in range(max(0, count - len(prefix)))
                ]
            return [minimal_value(items, root, depth + 1) for _ in range(count)]
        case "string":
            return _minimal_string(schema)
        case "integer" | "number":
            return _minimal_number(schema, integer=kind == "integer")
        case "boolean":
            return False
        case "null":
            return None
    return {}


_FORMATS = {
    "date": "1970-01-01",
    "date-time": "1970-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "a@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


def _minimal_string(schema: Mapping[str, Any]) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    length = schema.get("minLength", 0)
    return "a" * length if isinstance(length, int) else ""


def _minimal_number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    low: float | None = None
    exclusive = False
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
    if isinstance(schema.get("exclusiveMinimum"), int | float) and (
        low is None or schema["exclusiveMinimum"] >= low
    ):
        low, exclusive = schema["exclusiveMinimum"], True
    high = schema.get("maximum")
    step = schema.get("multipleOf")
    if low is None:
        # Zero when allowed, else the upper bound.
        value: float = 0
        if isinstance(high, int | float) and high < 0:
            value = high
    else:
        value = low
    if isinstance(step, int | float) and step > 0:
        k = -(-value // step)
        value = k * step
        if exclusive and value <= (low or 0):
            value += step
    elif exclusive:
        value = value + 1 if integer else value + 1e-6
    if integer:
        value = -(-value // 1) if value % 1 else value
        return int(value)
    return value


class EchoResponder:
    """Repeats the user's words; speaks them as a tone.

    Args:
        chunk_delay: seconds to wait between audio chunks (0 streams at
            once; the server's ``pace`` is the usual way to slow it).
    """

    def __init__(self, *, chunk_delay: float = 0.0) -> None:
        self.chunk_delay = chunk_delay

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Yield the echo of the last user turn, or the forced function call."""
        tool = forced_tool(request)
        if tool is not None:
            schema = tool.parameters if isinstance(tool.parameters, dict) else {}
            arguments = minimal_value(schema) if schema else {}
            yield FunctionCallChunk(tool.name, json.dumps(arguments))
            return
        text, untranscribed = last_user_turn(request)
        if not text and untranscribed:
            # Audio with input transcription off: nothing to repeat, but say so.
            text = "I heard you, but transcription is off."
        if request.output_modalities != ["audio"]:
            if text:
                yield TextChunk(text)
            return
        for chunk in spoken_as_tone(text, max(200, 60 * len(text))):
            yield chunk
            if self.chunk_delay and isinstance(chunk, AudioChunk):
                await asyncio.sleep(self.chunk_delay)
