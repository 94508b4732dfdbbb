"""The ``scripted`` responder: deterministic replies from a fixture file.

For client test suites. A fixture is YAML or JSON::

    rules:
      - match: {text: "weather"}            # case-insensitive substring of the
        reply:                              # last user text (or transcript)
          text: "Let me check."
          function_call: {name: get_weather, arguments: {city: Paris}}
      - match: {item_type: function_call_output}
        reply: {text: "It is sunny in Paris."}
      - match: {regex: "^(hi|hello)\\b"}
        reply: {text: "Hello!", audio: {ms: 800}}
    default: {text: "Sorry, I have no answer for that."}

Rules are tried in order against the last item of the conversation (or of the
response's own ``input``); the first match wins, else ``default``; with no
default the response is empty. In audio modality the reply's audio is a tone
(``audio: {ms: N, kind: tone|silence}``, default: a tone of 60 ms a character
of text) unless a speech engine is configured, with the transcript's words
spread over it. ``pace: N`` at the top of a fixture overrides the server's
``--pace`` for its replies (``0``: as fast as possible, ``1``: real time).

A reply's function call names a function the client declared in ``tools``
(the session's or the response's); a call of any other name is left out of
the response, with a warning naming the function and the declared ones (the
client sees the rest of the reply, and no call).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from openrealtime.models.items import (
    ConversationItem,
    FunctionCallOutputItem,
    InputAudioPart,
    InputTextPart,
    MessageItem,
)
from openrealtime.models.session import FunctionTool
from openrealtime.responders.base import (
    Chunk,
    FunctionCallChunk,
    TextChunk,
    spoken_as_tone,
)
from openrealtime.session import ResponseRequest


__all__ = ["Fixture", "Match", "Reply", "Rule", "ScriptedResponder", "load_fixture"]

logger = logging.getLogger("openrealtime.responders")


class Match(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a rule matches: all given conditions must hold."""

    text: str | None = None
    regex: str | None = None
    item_type: Literal["message", "function_call", "function_call_output"] | None = None
    role: Literal["user", "assistant", "system"] | None = None
    any: bool = False


class ReplyAudio(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The audio of a reply."""

    ms: int
    kind: Literal["tone", "silence"] = "tone"


class ReplyCall(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A function call in a reply; arguments as an object or a JSON string."""

    name: str
    arguments: dict[str, Any] | str = msgspec.field(default_factory=dict)
    call_id: str | None = None


class Reply(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a rule answers."""

    text: str | None = None
    audio: ReplyAudio | None = None
    function_call: ReplyCall | None = None
    function_calls: list[ReplyCall] = msgspec.field(default_factory=list)


class Rule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One rule of a fixture."""

    match: Match
    reply: Reply


class Fixture(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A whole fixture file."""

    rules: list[Rule] = msgspec.field(default_factory=list)
    default: Reply | None = None
    #: How fast replies stream, as a multiple of real time (``None``: the
    #: server's ``--pace``; ``0``: as fast as possible).
    pace: float | None = msgspec.field(default=None)


def load_fixture(source: str | Path | dict[str, Any]) -> Fixture:
    """Load and validate a fixture from a path (YAML or JSON) or a dict.

    Raises:
        ValueError: the fixture is not valid, with the path of the mistake.
    """
    if isinstance(source, dict):
        data: Any = source
    else:
        text = Path(source).read_text(encoding="utf-8")
        data = (
            yaml.safe_load(text)
            if not str(source).endswith(".json")
            else json.loads(text)
        )
    try:
        fixture = msgspec.convert(data, Fixture)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid fixture: {exc}") from None
    for rule in fixture.rules:
        if rule.match.regex is not None:
            re.compile(rule.match.regex)
    if fixture.pace is not None and fixture.pace < 0:
        raise ValueError(f"invalid fixture: pace must be >= 0, not {fixture.pace}")
    return fixture


def _item_text(item: ConversationItem) -> str:
    if isinstance(item, MessageItem):
        texts = []
        for part in item.content:
            if isinstance(part, InputTextPart):
                texts.append(part.text)
            elif isinstance(part, InputAudioPart) and isinstance(part.transcript, str):
                texts.append(part.transcript)
        return " ".join(t for t in texts if t)
    if isinstance(item, FunctionCallOutputItem):
        return item.output
    return ""


def _matches(match: Match, item: ConversationItem | None) -> bool:
    if match.any:
        return True
    if item is None:
        return False
    tag = item.__struct_config__.tag
    if match.item_type is not None and tag != match.item_type:
        return False
    if match.role is not None and (
        not isinstance(item, MessageItem) or item.role != match.role
    ):
        return False
    text = _item_text(item)
    if match.text is not None and match.text.lower() not in text.lower():
        return False
    if match.regex is not None and re.search(match.regex, text, re.IGNORECASE) is None:
        return False
    return (
        match.text is not None
        or match.regex is not None
        or match.item_type is not None
        or (match.role is not None)
    )


class ScriptedResponder:
    """Replies by the first matching rule of a fixture.

    Args:
        fixture: the rules (see :func:`load_fixture`).
    """

    def __init__(self, fixture: Fixture) -> None:
        self.fixture = fixture

    @property
    def pace(self) -> float | None:
        """The fixture's pace, which overrides the server's (``None``: none)."""
        return self.fixture.pace

    def choose(self, request: ResponseRequest) -> Reply | None:
        """The reply for a request: the first rule matching its last item."""
        last = request.conversation[-1] if request.conversation else None
        for rule in self.fixture.rules:
            if _matches(rule.match, last):
                return rule.reply
        return self.fixture.default

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        """Yield the chosen reply: its text (spoken, in audio), then its calls."""
        reply = self.choose(request)
        if reply is None:
            return
        if request.output_modalities == ["audio"] and (reply.text or reply.audio):
            spec = reply.audio or ReplyAudio(ms=max(200, 60 * len(reply.text or "")))
            for chunk in spoken_as_tone(reply.text or "", spec.ms, spec.kind):
                yield chunk
        elif reply.text:
            yield TextChunk(reply.text)
        declared = {t.name for t in request.tools if isinstance(t, FunctionTool)}
        calls = (
            [reply.function_call] if reply.function_call else []
        ) + reply.function_calls
        for call in calls:
            if call.name not in declared:
                logger.warning(
                    "the fixture calls %r, which the client did not declare as a "
                    "function tool (declared: %s); the call is left out",
                    call.name,
                    ", ".join(sorted(declared)) or "none",
                )
                continue
            arguments = (
                call.arguments
                if isinstance(call.arguments, str)
                else json.dumps(call.arguments)
            )
            yield FunctionCallChunk(call.name, arguments, call.call_id)
