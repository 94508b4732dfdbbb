"""Normalization (ids, timestamps, audio) and path-level diffs."""

from __future__ import annotations

import base64

from openrealtime.tools.diff import MISSING, Change, diff
from openrealtime.tools.normalize import Normalizer, audio_placeholder


def test_ids_map_consistently_by_kind_and_first_sight() -> None:
    n = Normalizer()
    created = n.event(
        {
            "type": "session.created",
            "event_id": "event_AAA",
            "session": {"id": "sess_X", "expires_at": 1760000000, "model": "m"},
        },
        "server",
    )
    assert created == {
        "type": "session.created",
        "event_id": "<event_1>",
        "session": {"id": "<session_1>", "expires_at": "<timestamp>", "model": "m"},
    }
    added = n.event(
        {
            "type": "conversation.item.added",
            "event_id": "event_BBB",
            "previous_item_id": "item_1",
            "item": {"id": "item_2", "call_id": "call_9", "status": "completed"},
        },
        "server",
    )
    assert added["event_id"] == "<event_2>"
    assert added["previous_item_id"] == "<item_1>"
    assert added["item"] == {
        "id": "<item_2>",
        "call_id": "<call_1>",
        "status": "completed",
    }
    # Known ids inside server text are replaced; unknown ones are left.
    error = n.event(
        {
            "type": "error",
            "error": {"message": "item item_2 and item_zz", "event_id": None},
        },
        "server",
    )
    assert error["error"]["message"] == "item <item_2> and item_zz"
    # Client text is kept as typed.
    typed = n.event({"type": "x", "text": "item_2"}, "client")
    assert typed["text"] == "item_2"


def test_audio_becomes_a_length_on_the_server_side_only() -> None:
    n = Normalizer()
    data = base64.b64encode(b"\x01" * 10).decode()
    delta = n.event({"type": "response.output_audio.delta", "delta": data}, "server")
    assert delta["delta"] == "<audio 10 bytes>"
    text = n.event({"type": "response.output_text.delta", "delta": "hi"}, "server")
    assert text["delta"] == "hi"
    append = n.event({"type": "input_audio_buffer.append", "audio": data}, "client")
    assert append["audio"] == data
    assert audio_placeholder("not base64!") == "<audio 8 bytes>"
    assert n.event({"obfuscation": "abc"}, "server") == {"obfuscation": "<obfuscation>"}


def test_denormalize_uses_live_ids_and_makes_fresh_ones() -> None:
    n = Normalizer()
    n.event(
        {"type": "response.done", "response": {"output": [{"call_id": "call_LIVE"}]}},
        "server",
    )
    live = n.denormalize(
        {
            "type": "conversation.item.create",
            "event_id": "<event_4>",
            "item": {
                "type": "function_call_output",
                "call_id": "<call_1>",
                "output": "{}",
            },
        }
    )
    assert live["item"]["call_id"] == "call_LIVE"
    assert live["event_id"] == "event_r4"
    # The fresh id normalizes back to its placeholder, and counting goes on.
    assert n.event({"event_id": "event_r4"}, "client") == {"event_id": "<event_4>"}
    assert n.event({"event_id": "event_new"}, "server") == {"event_id": "<event_5>"}
    assert n.denormalize({"text": "see <item_3> and <x_1>"}) == {
        "text": "see item_r3 and <x_1>"
    }


def test_diff_reports_paths() -> None:
    old = {"a": 1, "b": {"c": [1, 2], "d": True}, "gone": "x", "v": {"k": 1}}
    new = {"a": 1, "b": {"c": [1, 3, 4], "d": 1}, "v": None, "new": [None]}
    assert diff(old, new) == [
        Change("changed", "b.c[1]", 2, 3),
        Change("added", "b.c[2]", MISSING, 4),
        Change("changed", "b.d", True, 1),
        Change("removed", "gone", "x", MISSING),
        Change("changed", "v", {"k": 1}, None),
        Change("added", "new", MISSING, [None]),
    ]
    assert diff([1, 2], [1]) == [Change("removed", "[1]", 2, MISSING)]
    assert diff(1, 1.0) == []
    assert Change("added", "x", MISSING, 2).to_json() == {
        "op": "added",
        "path": "x",
        "new": 2,
    }
    assert repr(MISSING) == "MISSING"
