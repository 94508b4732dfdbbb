"""Property: the engine equals a plain reference model of "merge if valid, else unchanged"."""

from __future__ import annotations

import copy
from typing import Any, get_args

from hypothesis import given, settings, strategies as st

from openrealtime.typing import Voice
from tests.helpers import effective, new_session, update


VOICES: list[str] = list(get_args(Voice))
SERVER_KEYS = {
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "idle_timeout_ms",
    "create_response",
    "interrupt_response",
}
SEMANTIC_KEYS = {"eagerness", "create_response", "interrupt_response"}
DEFAULT_TD = {
    "server_vad": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    },
    "semantic_vad": {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    },
}

turn_detection = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["server_vad", "semantic_vad"]),
            "threshold": st.sampled_from([0.0, 0.3, 0.9, 1.0, 1.5]),
            "silence_duration_ms": st.sampled_from([0, 200, 800]),
            "eagerness": st.sampled_from(["low", "high"]),
            "create_response": st.booleans(),
        },
    ),
)

patches = st.fixed_dictionaries(
    {},
    optional={
        "instructions": st.text(max_size=8),
        "output_modalities": st.sampled_from([["audio"], ["text"], ["text", "audio"]]),
        "tools": st.lists(
            st.builds(
                lambda n: {"type": "function", "name": n}, st.sampled_from("abc")
            ),
            max_size=2,
        ),
        "tracing": st.sampled_from([None, "auto"]),
        "audio": st.fixed_dictionaries(
            {},
            optional={
                "output": st.fixed_dictionaries(
                    {},
                    optional={
                        "voice": st.sampled_from([*VOICES[:3], "nope"]),
                        "speed": st.sampled_from([0.1, 0.25, 1.0, 1.5, 2.0]),
                    },
                ),
                "input": st.fixed_dictionaries(
                    {}, optional={"turn_detection": turn_detection}
                ),
            },
        ),
        "bogus": st.just(1),
    },
)


def reference(config: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    """Merge ``patch`` into ``config`` by the spec's rules; None when invalid."""
    if "bogus" in patch:
        return None
    new = copy.deepcopy(config)
    for key in ("instructions", "tools", "tracing"):
        if key in patch:
            new[key] = patch[key]
    if "output_modalities" in patch:
        if len(patch["output_modalities"]) != 1:
            return None
        new["output_modalities"] = patch["output_modalities"]
    output = patch.get("audio", {}).get("output", {})
    if output.get("voice", "alloy") not in VOICES:
        return None
    if not 0.25 <= output.get("speed", 1.0) <= 1.5:
        return None
    new["audio"]["output"].update(output)
    inp = patch.get("audio", {}).get("input", {})
    if "turn_detection" in inp:
        td = inp["turn_detection"]
        current = new["audio"]["input"]["turn_detection"]
        if td is None:
            new["audio"]["input"]["turn_detection"] = None
        else:
            if not 0.0 <= td.get("threshold", 0.5) <= 1.0:
                return None
            kind = td.get("type") or (current["type"] if current else None)
            if kind is None:
                return None
            allowed = SERVER_KEYS if kind == "server_vad" else SEMANTIC_KEYS
            if set(td) - {"type"} - allowed:
                return None
            base = current if current and current["type"] == kind else DEFAULT_TD[kind]
            new["audio"]["input"]["turn_detection"] = {**base, **td, "type": kind}
    return new


@settings(max_examples=300, deadline=None)
@given(st.lists(patches, min_size=1, max_size=12))
def test_engine_matches_reference(steps: list[dict[str, Any]]) -> None:
    """Random valid and invalid updates: same effective config, one reply each, in order."""
    session = new_session()
    model = effective(session)
    for i, patch in enumerate(steps):
        events = update(session, patch, event_id=f"c{i}")
        expected = reference(model, patch)
        assert len(events) == 1
        if expected is None:
            assert events[0]["type"] == "error"
            assert events[0]["error"]["event_id"] == f"c{i}"
        else:
            assert events[0]["type"] == "session.updated", events[0]
            model = expected
            assert events[0]["session"] == model
        assert effective(session) == model
