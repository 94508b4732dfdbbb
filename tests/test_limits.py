"""Hostile sizes through the engine: each gets a clear answer, and memory stays bounded."""

from __future__ import annotations

import base64
import json
import tracemalloc

from openrealtime.session import Limits
from tests.helpers import new_session, only_error, send, types, update


def test_huge_audio_is_refused_and_not_kept() -> None:
    """Audio past the buffer cap is refused; repeating it does not grow memory."""
    session = new_session(limits=Limits(max_buffer_bytes=1 << 20))
    update(session, {"audio": {"input": {"turn_detection": None}}})
    frame = json.dumps(
        {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(bytes(2 << 20)).decode(),
        }
    )
    session.receive_text(frame, 1)
    assert (
        json.loads(session.data_to_send()[0])["error"]["code"]
        == "input_audio_buffer_full"
    )
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            session.receive_text(frame, 1)
            session.data_to_send()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 256 * 1024, grown
    assert session.buffered_ms == 0


def test_thousands_of_tools() -> None:
    """5 000 tools are a valid config: accepted, and echoed whole."""
    session = new_session()
    tools = [
        {"type": "function", "name": f"tool_{i}", "parameters": {"type": "object"}}
        for i in range(5000)
    ]
    (event,) = update(session, {"tools": tools})
    assert event["type"] == "session.updated"
    assert len(event["session"]["tools"]) == 5000


def test_very_long_strings() -> None:
    """A 4 MB instructions string is a string like any other; event_id has a cap."""
    session = new_session()
    (event,) = update(session, {"instructions": "x" * (4 << 20)})
    assert len(event["session"]["instructions"]) == 4 << 20
    error = only_error(update(session, {"instructions": "y"}, event_id="e" * 100_000))
    assert error["code"] == "string_above_max_length"
    assert error["param"] == "event_id"


def test_deep_nesting_in_tool_parameters() -> None:
    """Deep JSON inside a free-form object: fine up to the parser's limit, then invalid_json."""
    session = new_session()
    nested: object = 1
    for _ in range(200):
        nested = {"a": nested}
    (event,) = update(
        session, {"tools": [{"type": "function", "name": "f", "parameters": nested}]}
    )
    assert event["type"] == "session.updated"
    depth = 50_000
    frame = (
        '{"type":"session.update","session":{"type":"realtime","tools":[{"type":"function",'
        '"name":"f","parameters":' + '{"a":' * depth + "1" + "}" * depth + "}]}}"
    )
    session.receive_text(frame, 2)
    (error,) = [json.loads(d) for d in session.data_to_send()]
    assert error["error"]["code"] == "invalid_json"


def test_many_items_are_bounded() -> None:
    """The conversation keeps at most max_items items."""
    session = new_session(limits=Limits(max_items=100))
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "x" * 1000}],
    }
    for _ in range(1000):
        assert types(
            send(session, {"type": "conversation.item.create", "item": item})
        ) == [
            "conversation.item.added",
            "conversation.item.done",
        ]
    assert len(session.items) == 100
