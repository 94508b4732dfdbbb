"""The codec: spec examples round-trip, tri-state fields, and the hosted errors.

Exact strings throughout: the messages are the hosted API's templates
(WIRE_RULES §1–§3), and a client that matches on them must keep working.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from openrealtime import codec, errors
from openrealtime.codec import Decoder, decode_client_event, decode_server_event, encode
from openrealtime.exceptions import InvalidRequestError
from openrealtime.models import (
    SERVER_EVENT_TYPES,
    UNSET,
    OutputAudioBufferClearEvent,
    TranscriptionSessionUpdateEvent,
)
from tests import openapi


__all__: list[str] = []

#: The hosted list of GA client event types, as an unknown ``type`` gets it.
TWELVE = (
    "'session.update', 'session.close', 'input_audio_buffer.append', "
    "'session.input_audio_buffer.append', 'input_audio_buffer.commit', "
    "'input_audio_buffer.clear', 'conversation.item.create', "
    "'conversation.item.truncate', 'conversation.item.delete', "
    "'conversation.item.retrieve', 'response.create', and 'response.cancel'"
)


def _error(data: bytes | str) -> tuple[str | None, str, str | None, str | None]:
    """Decode a client frame that must fail; its (code, message, param, event_id)."""
    with pytest.raises(InvalidRequestError) as info:
        decode_client_event(data)
    e = info.value
    return e.code, e.message, e.param, e.event_id


def _bad(doc: Any) -> tuple[str | None, str, str | None, str | None]:
    return _error(json.dumps(doc))


def _session(**fields: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", **fields}}


# --- Spec examples ------------------------------------------------------------------

#: Spec examples that do not decode, with why and the hosted error we give.
#: Keyed by (side, type, index of the document in the example).
EXAMPLE_FAILURES: dict[tuple[str, str, int], tuple[str, tuple[Any, ...]]] = {
    ("Client", "output_audio_buffer.clear", 0): (
        "WebRTC/SIP only: a WebSocket answers it as an unknown event type "
        "(it still round-trips through its own model, see below)",
        (
            "invalid_value",
            f"Invalid value: 'output_audio_buffer.clear'. Supported values are: {TWELVE}.",
            "type",
            "optional_client_event_id",
        ),
    ),
    ("Client", "transcription_session.update", 0): (
        "A Beta event: GA answers it as an unknown event type [WIRE 75, 85]",
        (
            "invalid_value",
            f"Invalid value: 'transcription_session.update'. Supported values are: {TWELVE}.",
            "type",
            None,
        ),
    ),
    ("Server", "conversation.item.retrieved", 0): (
        "Beta content part shape ({'type': 'audio', 'format': 'pcm16'}); GA "
        "assistant parts are 'output_audio'",
        (
            "invalid_value",
            "Invalid value: 'audio'. Supported values are: 'input_text', 'input_audio', 'input_image', 'output_text', and 'output_audio'.",
            "item.content[0].type",
            "event_CCXGSizgEppa2d4XbKA7K",
        ),
    ),
    ("Server", "response.output_item.done", 0): (
        "Beta content part type 'text'; GA assistant text parts are 'output_text'",
        (
            "invalid_value",
            "Invalid value: 'text'. Supported values are: 'input_text', 'input_audio', 'input_image', 'output_text', and 'output_audio'.",
            "item.content[0].type",
            "event_3536",
        ),
    ),
    ("Server", "input_audio_buffer.dtmf_event_received", 0): (
        "A typo in the example: the type has a leading space",
        (
            "invalid_value",
            f"Invalid value: ' input_audio_buffer.dtmf_event_received'. Supported values are: {errors.supported_list(SERVER_EVENT_TYPES)}.",
            "type",
            None,
        ),
    ),
    ("Server", "session.created", 0): (
        "The example (Aug 2025) predates 'truncation', which GA sends and the "
        "effective config requires [WIRE §5, 36]; with it added it round-trips",
        (
            "missing_required_parameter",
            "Missing required parameter: 'session.truncation'.",
            "session.truncation",
            "event_C9G5RJeJ2gF77mV7f2B1j",
        ),
    ),
    ("Server", "session.updated", 0): (
        "As session.created: no 'truncation' in the example",
        (
            "missing_required_parameter",
            "Missing required parameter: 'session.truncation'.",
            "session.truncation",
            "event_C9G8mqI3IucaojlVKE8Cs",
        ),
    ),
    ("Server", "transcription_session.updated", 0): (
        "A Beta event whose example has keys (id, object, include...) that its "
        "schema lacks; GA never sends it",
        (
            "unknown_parameter",
            "Unknown parameter: 'session.id'.",
            "session.id",
            "event_5678",
        ),
    ),
}


def _example_cases() -> list[Any]:
    cases = []
    for side in ("Client", "Server"):
        for type_value, (_, schema) in openapi.event_schemas(side).items():
            for i, doc in enumerate(openapi.examples(schema)):
                cases.append(
                    pytest.param(side, type_value, i, doc, id=f"{type_value}-{i}")
                )
    return cases


def _decoder(side: str) -> Any:
    return decode_client_event if side == "Client" else decode_server_event


@pytest.mark.parametrize(("side", "type_value", "index", "doc"), _example_cases())
def test_spec_example_round_trips(
    side: str, type_value: str, index: int, doc: Any
) -> None:
    """A spec example decodes and re-encodes to an equal document, or fails as listed."""
    data = json.dumps(doc)
    expected = EXAMPLE_FAILURES.get((side, type_value, index))
    if expected is not None:
        with pytest.raises(InvalidRequestError) as info:
            _decoder(side)(data)
        e = info.value
        assert (e.code, e.message, e.param, e.event_id) == expected[1]
        return
    assert json.loads(encode(_decoder(side)(data))) == doc


def test_every_example_failure_is_still_a_spec_example() -> None:
    """The expected failures name examples that exist (the table cannot rot)."""
    keys = set()
    for side in ("Client", "Server"):
        for type_value, (_, schema) in openapi.event_schemas(side).items():
            for i, _doc in enumerate(openapi.examples(schema)):
                keys.add((side, type_value, i))
    assert set(EXAMPLE_FAILURES) <= keys


def test_output_audio_buffer_clear_example_round_trips_through_its_model() -> None:
    """output_audio_buffer.clear is modelled, though a WebSocket rejects it."""
    doc = openapi.examples(
        openapi.event_schemas("Client")["output_audio_buffer.clear"][1]
    )[0]
    event = Decoder[OutputAudioBufferClearEvent](OutputAudioBufferClearEvent).decode(
        json.dumps(doc)
    )
    assert json.loads(encode(event)) == doc


def test_beta_transcription_session_update_example_has_keys_its_schema_lacks() -> None:
    """The Beta example's turn_detection.create_response is not in its schema."""
    doc = openapi.examples(
        openapi.event_schemas("Client")["transcription_session.update"][1]
    )[0]
    decoder = Decoder[TranscriptionSessionUpdateEvent](TranscriptionSessionUpdateEvent)
    with pytest.raises(InvalidRequestError) as info:
        decoder.decode(json.dumps(doc))
    assert (
        info.value.message
        == "Unknown parameter: 'session.turn_detection.create_response'."
    )
    del doc["session"]["turn_detection"]["create_response"]
    assert json.loads(encode(decoder.decode(json.dumps(doc)))) == doc


@pytest.mark.parametrize("type_value", ["session.created", "session.updated"])
def test_session_example_round_trips_once_truncation_is_added(type_value: str) -> None:
    """Apart from the missing truncation, the GA session examples round-trip."""
    doc = openapi.examples(openapi.event_schemas("Server")[type_value][1])[0]
    doc["session"]["truncation"] = "auto"
    assert json.loads(encode(decode_server_event(json.dumps(doc)))) == doc


# --- Tri-state round trips ------------------------------------------------------------

#: Nullable fields of a session.update: (path under the event, a value).
NULLABLE: list[tuple[str, Any]] = [
    ("session.tracing", "auto"),
    ("session.tracing", {"workflow_name": "w", "group_id": "g", "metadata": {"a": 1}}),
    ("session.prompt", {"id": "pmpt_1"}),
    ("session.prompt.version", "3"),
    ("session.prompt.variables", {"city": "Paris"}),
    ("session.include", ["item.input_audio_transcription.logprobs"]),
    ("session.audio.input.transcription", {"model": "whisper-1"}),
    ("session.audio.input.transcription.language", "en"),
    ("session.audio.input.transcription.prompt", "expect names"),
    ("session.audio.input.noise_reduction", {"type": "near_field"}),
    ("session.audio.input.turn_detection", {"type": "server_vad"}),
    ("session.audio.input.turn_detection.idle_timeout_ms", 6000),
    ("session.tools[0].headers", {"X-Key": "v"}),
    ("session.tools[0].allowed_tools", ["search"]),
    ("session.tools[0].allowed_callers", ["direct"]),
    ("session.tools[0].require_approval", "never"),
    ("session.tool_choice.name", "search"),
]

#: What each path needs around it (parents that must exist).
_BASES: dict[str, dict[str, Any]] = {
    "session.prompt.": {"prompt": {"id": "pmpt_1"}},
    "session.audio.input.transcription.": {
        "audio": {"input": {"transcription": {"model": "whisper-1"}}}
    },
    "session.audio.input.turn_detection.": {
        "audio": {"input": {"turn_detection": {"type": "server_vad"}}}
    },
    "session.tools[0].": {
        "tools": [
            {"type": "mcp", "server_label": "s", "server_url": "https://x.example"}
        ]
    },
    "session.tool_choice.": {"tool_choice": {"type": "mcp", "server_label": "s"}},
}


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        steps.append(name)
        if index:
            steps.append(int(index.rstrip("]")))
    return steps


def _base(path: str) -> dict[str, Any]:
    session: dict[str, Any] = {"type": "realtime"}
    for prefix, extra in _BASES.items():
        if path.startswith(prefix):
            session.update(copy.deepcopy(extra))
    return {"type": "session.update", "session": session}


def _set(doc: Any, path: str, value: Any) -> None:
    steps = _steps(path)
    for step in steps[:-1]:
        if isinstance(step, str) and step not in doc:
            doc[step] = {}
        doc = doc[step]
    doc[steps[-1]] = value


def _ensure(doc: Any, path: str) -> None:
    """Create the objects along ``path`` that the document lacks."""
    for step in _steps(path):
        if isinstance(step, str) and step not in doc:
            doc[step] = {}
        doc = doc[step]


def _get(obj: Any, path: str) -> Any:
    for step in _steps(path):
        obj = obj[step] if isinstance(step, int) else getattr(obj, step)
    return obj


@pytest.mark.parametrize("case", ["absent", "null", "value"])
@pytest.mark.parametrize(
    ("path", "value"), NULLABLE, ids=[f"{p}={v!r}"[:60] for p, v in NULLABLE]
)
def test_nullable_field_keeps_absent_null_and_value_apart(
    path: str, value: Any, case: str
) -> None:
    """Absent/null/value decode to UNSET/None/value and encode back unchanged."""
    doc = _base(path)
    parent, _, name = path.rpartition(".")
    _ensure(doc, parent)
    if case != "absent":
        _set(doc, path, None if case == "null" else value)
    event = decode_client_event(json.dumps(doc))
    got = getattr(_get(event, parent), name)
    if case == "absent":
        assert got is UNSET
    elif case == "null":
        assert got is None
    else:
        assert msgspec.to_builtins(got) == value
    assert json.loads(encode(event)) == doc


NOT_NULLABLE: list[tuple[str, str]] = [
    ("event_id", "a string"),
    ("session.type", "a string"),
    ("session.model", "a string"),
    ("session.instructions", "a string"),
    ("session.output_modalities", "an array"),
    ("session.tools", "an array"),
    ("session.tool_choice", "one of a string or an object"),
    ("session.parallel_tool_calls", "a boolean"),
    ("session.reasoning", "an object"),
    ("session.max_output_tokens", "one of an integer or a string"),
    ("session.truncation", "one of a string or an object"),
    ("session.audio", "an object"),
    ("session.audio.input.format", "an object"),
    ("session.audio.output.voice", "one of a string or an object"),
    ("session.audio.output.speed", "a decimal"),
    ("session.audio.input.turn_detection.threshold", "a decimal"),
    ("session.audio.input.turn_detection.silence_duration_ms", "an integer"),
    ("session.audio.input.transcription.model", "a string"),
]


@pytest.mark.parametrize(("path", "expected"), NOT_NULLABLE)
def test_null_for_a_non_nullable_field_is_invalid_type(
    path: str, expected: str
) -> None:
    """null where the spec allows none is invalid_type, with the hosted wording."""
    doc = _base(path)
    _set(doc, path, None)
    assert _bad(doc) == (
        "invalid_type",
        f"Invalid type for '{path}': expected {expected}, but got null instead.",
        path,
        None,
    )


# --- Error templates, pinned ------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "param"),
    [
        (
            _session(
                tools=[
                    {"type": "function", "name": "a"},
                    {"type": "function", "name": "b"},
                    {"type": "function", "name": "c", "meta": {}},
                ]
            ),
            "session.tools[2].meta",
        ),
        (
            {
                "type": "input_audio_buffer.append",
                "audio": "",
                "session": {"type": "realtime"},
            },
            "session",
        ),
        (_session(temperature=None), "session.temperature"),
        (_session(voice="alloy"), "session.voice"),
        (_session(turn_detection={"type": "server_vad"}), "session.turn_detection"),
        (_session(modalities=["text"]), "session.modalities"),
        (_session(input_audio_format="pcm16"), "session.input_audio_format"),
        (
            _session(input_audio_transcription={"model": "whisper-1"}),
            "session.input_audio_transcription",
        ),
        (_session(id="sess_1"), "session.id"),
        (_session(object="realtime.session"), "session.object"),
        (_session(expires_at=1756324625), "session.expires_at"),
        (
            _session(audio={"input": {"input_audio_noise_reduction": None}}),
            "session.audio.input.input_audio_noise_reduction",
        ),
        (
            _session(audio={"input": {"format": {"type": "audio/pcmu", "rate": 8000}}}),
            "session.audio.input.format.rate",
        ),
        (
            {
                "type": "response.create",
                "response": {
                    "input": [
                        {
                            "type": "message",
                            "role": "user",
                            "content": [
                                {"type": "input_text", "text": "hi", "extra": 1}
                            ],
                        }
                    ]
                },
            },
            "response.input[0].content[0].extra",
        ),
        ({"type": "input_audio_buffer.commit", "bogus": 1}, "bogus"),
    ],
)
def test_unknown_parameter(doc: dict[str, Any], param: str) -> None:
    """An unknown key, at any depth and even when null, is unknown_parameter."""
    assert _bad(doc) == (
        "unknown_parameter",
        f"Unknown parameter: '{param}'.",
        param,
        None,
    )


def test_invalid_value_with_one_supported_value() -> None:
    """One supported value is listed alone."""
    assert _bad(_session(tracing="manual")) == (
        "invalid_value",
        "Invalid value: 'manual'. Supported values are: 'auto'.",
        "session.tracing",
        None,
    )


def test_invalid_value_with_two_supported_values() -> None:
    """Two supported values are joined with "and", no comma."""
    assert _bad(_session(output_modalities=["video"])) == (
        "invalid_value",
        "Invalid value: 'video'. Supported values are: 'text' and 'audio'.",
        "session.output_modalities[0]",
        None,
    )
    assert _bad({"type": "session.update", "session": {"type": "beta"}}) == (
        "invalid_value",
        "Invalid value: 'beta'. Supported values are: 'realtime' and 'transcription'.",
        "session.type",
        None,
    )


def test_invalid_value_with_three_or_more_values_in_spec_order() -> None:
    """Three or more values take an Oxford comma, in the spec's order."""
    assert _bad(_session(audio={"input": {"format": {"type": "pcm16"}}})) == (
        "invalid_value",
        "Invalid value: 'pcm16'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
        "session.audio.input.format.type",
        None,
    )
    assert _bad(_session(tool_choice="any")) == (
        "invalid_value",
        "Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'.",
        "session.tool_choice",
        None,
    )
    assert _bad(_session(audio={"output": {"voice": "nova"}})) == (
        "invalid_value",
        "Invalid value: 'nova'. Supported values are: 'alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', and 'cedar'.",
        "session.audio.output.voice",
        None,
    )
    assert _bad(
        _session(
            audio={
                "input": {
                    "turn_detection": {"type": "semantic_vad", "eagerness": "max"}
                }
            }
        )
    ) == (
        "invalid_value",
        "Invalid value: 'max'. Supported values are: 'low', 'medium', 'high', and 'auto'.",
        "session.audio.input.turn_detection.eagerness",
        None,
    )


@pytest.mark.parametrize(
    "type_value",
    [
        "foo",
        "response.cancelled",
        "transcription_session.update",
        "output_audio_buffer.clear",
        "session.created",
    ],
)
def test_unknown_event_type_lists_the_twelve_ga_types(type_value: str) -> None:
    """An event type a WebSocket does not accept gets invalid_value on type."""
    assert _bad({"type": type_value, "event_id": "evt_1"}) == (
        "invalid_value",
        f"Invalid value: '{type_value}'. Supported values are: {TWELVE}.",
        "type",
        "evt_1",
    )


@pytest.mark.parametrize(
    ("doc", "param", "expected", "got"),
    [
        (_session(audio="pcm16"), "session.audio", "an object", "a string"),
        (
            _session(audio={"input": {"format": "pcm16"}}),
            "session.audio.input.format",
            "an object",
            "a string",
        ),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": "0",
                "audio_end_ms": 0,
            },
            "content_index",
            "an integer",
            "a string",
        ),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": 1.5,
                "audio_end_ms": 0,
            },
            "content_index",
            "an integer",
            "a decimal",
        ),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": 0,
                "audio_end_ms": True,
            },
            "audio_end_ms",
            "an integer",
            "a boolean",
        ),
        (
            {"type": "conversation.item.delete", "item_id": None},
            "item_id",
            "a string",
            "null",
        ),
        (
            {"type": "conversation.item.delete", "item_id": ["i"]},
            "item_id",
            "a string",
            "an array",
        ),
        (
            _session(parallel_tool_calls="yes"),
            "session.parallel_tool_calls",
            "a boolean",
            "a string",
        ),
        (
            _session(max_output_tokens=1.5),
            "session.max_output_tokens",
            "one of an integer or a string",
            "a decimal",
        ),
        (
            _session(audio={"output": {"speed": "fast"}}),
            "session.audio.output.speed",
            "a decimal",
            "a string",
        ),
        (
            {"type": "input_audio_buffer.commit", "event_id": 7},
            "event_id",
            "a string",
            "an integer",
        ),
    ],
)
def test_invalid_type(doc: dict[str, Any], param: str, expected: str, got: str) -> None:
    """A value of the wrong JSON type is invalid_type, naming both types."""
    assert _bad(doc) == (
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param,
        None,
    )


@pytest.mark.parametrize(
    ("doc", "param"),
    [
        ({"type": "session.update", "session": {}}, "session.type"),
        ({"type": "session.update"}, "session"),
        ({"type": "conversation.item.create"}, "item"),
        ({"type": "input_audio_buffer.append"}, "audio"),
        (
            {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0},
            "audio_end_ms",
        ),
        (
            _session(audio={"input": {"format": {"type": "audio/pcm"}}}),
            "session.audio.input.format.rate",
        ),
        (_session(tools=[{"name": "f"}]), "session.tools[0].type"),
    ],
)
def test_missing_required_parameter(doc: dict[str, Any], param: str) -> None:
    """A required key left out is missing_required_parameter."""
    assert _bad(doc) == (
        "missing_required_parameter",
        f"Missing required parameter: '{param}'.",
        param,
        None,
    )


def test_missing_type_is_invalid_event_with_null_param() -> None:
    """An event with no type: invalid_event, "The 'type' field is missing.", param null."""
    assert _bad({"event_id": "evt_9", "session": {}}) == (
        "invalid_event",
        "The 'type' field is missing.",
        None,
        "evt_9",
    )
    assert _bad({}) == ("invalid_event", "The 'type' field is missing.", None, None)


@pytest.mark.parametrize(
    ("doc", "code", "message", "param"),
    [
        (
            _session(audio={"input": {"format": {"type": "audio/pcm", "rate": 16000}}}),
            "integer_below_min_value",
            "Invalid 'session.audio.input.format.rate': integer below minimum value. Expected a value >= 24000, but got 16000 instead.",
            "session.audio.input.format.rate",
        ),
        (
            _session(
                audio={"output": {"format": {"type": "audio/pcm", "rate": 48000}}}
            ),
            "integer_above_max_value",
            "Invalid 'session.audio.output.format.rate': integer above maximum value. Expected a value <= 24000, but got 48000 instead.",
            "session.audio.output.format.rate",
        ),
        (
            _session(audio={"output": {"speed": 0.1}}),
            "decimal_below_min_value",
            "Invalid 'session.audio.output.speed': decimal below minimum value. Expected a value >= 0.25, but got 0.1 instead.",
            "session.audio.output.speed",
        ),
        (
            _session(audio={"output": {"speed": 2}}),
            "decimal_above_max_value",
            "Invalid 'session.audio.output.speed': decimal above maximum value. Expected a value <= 1.5, but got 2 instead.",
            "session.audio.output.speed",
        ),
        (
            _session(
                audio={
                    "input": {
                        "turn_detection": {"type": "server_vad", "threshold": -0.5}
                    }
                }
            ),
            "decimal_below_min_value",
            "Invalid 'session.audio.input.turn_detection.threshold': decimal below minimum value. Expected a value >= 0, but got -0.5 instead.",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            _session(
                audio={
                    "input": {
                        "turn_detection": {"type": "server_vad", "threshold": 1.5}
                    }
                }
            ),
            "decimal_above_max_value",
            "Invalid 'session.audio.input.turn_detection.threshold': decimal above maximum value. Expected a value <= 1, but got 1.5 instead.",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            _session(
                audio={
                    "input": {
                        "turn_detection": {
                            "type": "server_vad",
                            "idle_timeout_ms": 1000,
                        }
                    }
                }
            ),
            "integer_below_min_value",
            "Invalid 'session.audio.input.turn_detection.idle_timeout_ms': integer below minimum value. Expected a value >= 5000, but got 1000 instead.",
            "session.audio.input.turn_detection.idle_timeout_ms",
        ),
        (
            _session(
                audio={
                    "input": {
                        "turn_detection": {
                            "type": "server_vad",
                            "idle_timeout_ms": 30001,
                        }
                    }
                }
            ),
            "integer_above_max_value",
            "Invalid 'session.audio.input.turn_detection.idle_timeout_ms': integer above maximum value. Expected a value <= 30000, but got 30001 instead.",
            "session.audio.input.turn_detection.idle_timeout_ms",
        ),
        (
            _session(max_output_tokens=5000),
            "integer_above_max_value",
            "Invalid 'session.max_output_tokens': integer above maximum value. Expected a value <= 4096, but got 5000 instead.",
            "session.max_output_tokens",
        ),
        (
            _session(max_output_tokens=0),
            "integer_below_min_value",
            "Invalid 'session.max_output_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "session.max_output_tokens",
        ),
    ],
)
def test_number_out_of_range(
    doc: dict[str, Any], code: str, message: str, param: str
) -> None:
    """A number outside its range names the bound and the value sent."""
    assert _bad(doc) == (code, message, param, None)


def test_event_id_too_long() -> None:
    """An event_id over 512 characters is string_above_max_length."""
    event_id = "e" * 600
    assert _bad({"type": "input_audio_buffer.commit", "event_id": event_id}) == (
        "string_above_max_length",
        "Invalid 'event_id': string too long. Expected a string with maximum length 512, but got a string with length 600 instead.",
        "event_id",
        event_id,
    )


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        '{"type": "session.update"',
        "",
        b"\xff\xfe",
        "{'type': 'x'}",
        '{"type": "input_audio_buffer.commit"} x',
        b'{"type": "\xcaesponse.create"}',
        b'{"type": "input_audio_buffer.commit", "event_id": "e\xec"}',
        b'{"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": {}',
    ],
)
def test_invalid_json(data: bytes | str) -> None:
    """A frame that is not JSON is invalid_json, param null."""
    assert _error(data) == (
        "invalid_json",
        "Invalid event: failed to parse JSON value. Please check the JSON syntax of your event.",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("data", "got"),
    [
        ("[]", "an array"),
        ("1", "an integer"),
        ("1.5", "a decimal"),
        ('"x"', "a string"),
        ("true", "a boolean"),
        ("null", "null"),
    ],
)
def test_json_that_is_not_an_object(data: str, got: str) -> None:
    """JSON that is not an object is invalid_event, param null."""
    assert _error(data) == (
        "invalid_event",
        f"Invalid event: expected an object, but got {got}.",
        None,
        None,
    )


@pytest.mark.parametrize(
    "event_id",
    [
        "evt_NbVvtzwXpGmqUT3Jt",
        "tools_update_169ae769b639",
        "6f1c3a52-8f0e-4d8e-9a31-0d9a5b9a7c11",
        "",
        'ü ✓ "quoted"',
    ],
)
def test_error_echoes_the_clients_event_id(event_id: str) -> None:
    """error.event_id is the client's event_id, whatever string it is."""
    assert (
        _bad(
            {
                "type": "session.update",
                "event_id": event_id,
                "session": {"type": "realtime", "voice": "x"},
            }
        )[3]
        == event_id
    )


def test_error_event_id_is_none_without_one() -> None:
    """error.event_id is None when the client sent no event_id (or not a string)."""
    assert _bad(_session(voice="x"))[3] is None
    assert _bad({"type": "session.update", "event_id": 1, "session": {}})[3] is None


def test_only_the_first_failure_is_reported_in_document_order() -> None:
    """Of several failures, the first in document order is reported [WIRE 114]."""
    formats = {
        "input": {"format": {"type": "pcm16"}},
        "output": {"format": {"type": "g711_ulaw"}},
    }
    assert _bad(_session(audio=formats))[2] == "session.audio.input.format.type"
    reordered = {"output": formats["output"], "input": formats["input"]}
    assert _bad(_session(audio=reordered))[2] == "session.audio.output.format.type"
    assert _bad(_session(bogus=1, instructions=None))[2] == "session.bogus"
    assert _bad(_session(instructions=None, bogus=1))[2] == "session.instructions"


def test_a_duplicated_key_keeps_its_last_value() -> None:
    """A key given twice counts once, with its last value (as JSON parsers do)."""
    event = decode_client_event(
        b'{"type": "input_audio_buffer.append", "audio": 5, "audio": "AAAA"}'
    )
    assert json.loads(encode(event)) == {
        "type": "input_audio_buffer.append",
        "audio": "AAAA",
    }
    assert _error(
        b'{"type": "input_audio_buffer.append", "audio": "AAAA", "audio": 5}'
    ) == (
        "invalid_type",
        "Invalid type for 'audio': expected a string, but got an integer instead.",
        "audio",
        None,
    )
    event = decode_client_event(b'{"type": "foo", "type": "input_audio_buffer.commit"}')
    assert json.loads(encode(event)) == {"type": "input_audio_buffer.commit"}


def test_explain_returns_none_for_a_valid_value() -> None:
    """explain() agrees with the fast path on a valid event: no error."""
    decoder = codec._client_events
    assert (
        codec.explain(_session(instructions="hi"), decoder._info, type_values=None)
        is None
    )


# --- Property tests: mutations of valid events ------------------------------------------

VALID_EVENTS: list[dict[str, Any]] = [
    _session(
        instructions="Be brief.",
        output_modalities=["audio"],
        audio={
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {
                    "model": "gpt-4o-transcribe",
                    "language": "en",
                    "prompt": None,
                },
                "noise_reduction": {"type": "far_field"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.6,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "idle_timeout_ms": None,
                    "create_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcmu"},
                "voice": "marin",
                "speed": 1.1,
            },
        },
        tools=[
            {
                "type": "function",
                "name": "f",
                "description": "d",
                "parameters": {"type": "object", "properties": {}},
            },
            {
                "type": "mcp",
                "server_label": "s",
                "server_url": "https://x.example",
                "require_approval": {"never": {"tool_names": ["a"]}},
            },
        ],
        tool_choice={"type": "function", "name": "f"},
        tracing={"workflow_name": "w"},
        truncation={
            "type": "retention_ratio",
            "retention_ratio": 0.5,
            "token_limits": {"post_instructions": 100},
        },
        prompt={"id": "pmpt_1", "version": None, "variables": {"a": "b"}},
        include=None,
        max_output_tokens="inf",
        event_id="evt_1",
    ),
    {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "turn_detection": {"type": "semantic_vad", "eagerness": "low"}
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    },
    {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e"},
    {
        "type": "conversation.item.create",
        "previous_item_id": "root",
        "item": {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_audio", "audio": "AAAA", "transcript": None},
                {
                    "type": "input_image",
                    "image_url": "data:image/png;base64,AAAA",
                    "detail": "low",
                },
            ],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c", "output": "{}"},
    },
    {
        "type": "conversation.item.truncate",
        "item_id": "i",
        "content_index": 0,
        "audio_end_ms": 1500,
    },
    {
        "type": "response.create",
        "response": {
            "output_modalities": ["text"],
            "conversation": "none",
            "metadata": {"k": "v"},
            "max_output_tokens": 200,
            "input": [
                {
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": "x"}],
                }
            ],
            "audio": {"output": {"voice": {"id": "voice_1"}}},
        },
    },
    {"type": "response.cancel", "response_id": "resp_1"},
]

#: Client strings never hold a backtick, so one in a message is msgspec's.
_text = st.text(st.characters(exclude_characters="`"), max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.sampled_from(
        [
            "audio/pcm",
            "server_vad",
            "realtime",
            "message",
            "input_text",
            "auto",
            "mcp",
            "function",
        ]
    ),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3)
    ),
    max_leaves=8,
)


def _containers(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every object and array in a document."""
    found = []
    if isinstance(doc, dict | list):
        found.append(path)
        items = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for key, value in items:
            found.extend(_containers(value, (*path, key)))
    return found


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A valid event with a few random mutations, as bytes (maybe truncated)."""
    doc = copy.deepcopy(draw(st.sampled_from(VALID_EVENTS)))
    for _ in range(draw(st.integers(1, 3))):
        target = _at(doc, draw(st.sampled_from(_containers(doc))))
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        action = draw(st.sampled_from(["drop", "add", "replace", "replace", "swap"]))
        if action == "add" or not keys:
            if isinstance(target, dict):
                target[draw(_text)] = draw(_json)
            else:
                target.append(draw(_json))
            continue
        key = draw(st.sampled_from(keys))
        if action == "drop":
            del target[key]
        elif action == "replace":
            target[key] = draw(_json)
        else:  # swap the value for one of another JSON type
            value = target[key]
            target[key] = draw(
                _json.filter(lambda v, old=value: type(v) is not type(old))
            )
    data = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    cut = draw(st.integers(0, 19))
    if cut == 0:
        data = data[: draw(st.integers(0, len(data)))]
    elif cut == 1 and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0x80, 0xFF))]) + data[i + 1 :]
    return data


MSGSPEC_WORDING = ("`", "Expected `", "- at `$")


@settings(
    max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(_mutated())
def test_mutated_events_decode_or_fail_with_a_hosted_error(data: bytes) -> None:
    """A mutated event decodes or raises InvalidRequestError in hosted wording.

    Differential: the fast path (msgspec) and the slow path (explain) agree on
    validity, so the fallback of Decoder.explain is never reached.
    """
    decoder = codec._client_events
    fallback = InvalidRequestError(
        "invalid_value", "Invalid value in your request.", None
    )
    with pytest.MonkeyPatch.context() as mp:
        real_explain = codec.explain
        depth = [0]

        def checked(*args: Any, **kwargs: Any) -> InvalidRequestError | None:
            # explain() recurses through the module global: check the outer call.
            depth[0] += 1
            try:
                result = real_explain(*args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                assert result is not None, (
                    f"msgspec rejected but explain() found nothing: {data!r}"
                )
            return result

        mp.setattr(codec, "explain", checked)
        try:
            decode_client_event(data)
        except InvalidRequestError as e:
            assert e.type == "invalid_request_error"
            assert not any(w in e.message for w in MSGSPEC_WORDING), e.message
            assert (e.code, e.message) != (fallback.code, fallback.message)
            accepted = False
        else:
            accepted = True
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        assert not accepted
        return
    if isinstance(raw, dict):
        # Both ways: valid for msgspec <=> explain finds nothing.
        found = codec.explain(raw, decoder._info, type_values=codec.CLIENT_EVENT_TYPES)
        assert (found is None) == accepted, (data, found)


def test_too_deep_nesting_is_invalid_json() -> None:
    """JSON nested past the parser's limit is invalid_json, not a crash."""
    depth = 100_000
    data = (
        b'{"type":"session.update","session":{"type":"realtime","tools":[{"type":'
        b'"function","name":"f","parameters":'
        + b'{"a":' * depth
        + b"1"
        + b"}" * depth
        + b"}]}}"
    )
    with pytest.raises(InvalidRequestError) as raised:
        decode_client_event(data)
    assert (raised.value.code, raised.value.message, raised.value.param) == (
        "invalid_json",
        "Invalid event: failed to parse JSON value. The event is nested too deeply.",
        None,
    )
    assert _client_events_explain(data).code == "invalid_json"


def _client_events_explain(data: bytes) -> InvalidRequestError:
    from openrealtime import codec

    return codec._client_events.explain(data)


@pytest.mark.parametrize(
    "name", ["get weather", "", "f\n", "caf\u00e9", "a.b", "\u0661\u0662"]
)
def test_function_name_outside_its_pattern(name: str) -> None:
    """A function name must match ``^[a-zA-Z0-9_-]+$`` in full, in a
    session.update as in a response.create. A trailing newline is rejected
    too (Python's ``re.search`` with ``$`` let it through)."""
    tool = {"type": "function", "name": name}
    message = (
        "Invalid 'session.tools[0].name': string does not match pattern. "
        "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
    )
    expected = ("invalid_value", message, "session.tools[0].name", None)
    assert _bad(_session(tools=[tool])) == expected
    response = {"type": "response.create", "response": {"tools": [tool]}}
    assert _bad(response) == (
        "invalid_value",
        message.replace("'session.", "'response."),
        "response.tools[0].name",
        None,
    )


@pytest.mark.parametrize("name", ["get_weather", "A-9", "x" * 64, "_"])
def test_function_name_inside_its_pattern(name: str) -> None:
    """Names the pattern allows decode, up to 64 characters."""
    event = decode_client_event(
        json.dumps(_session(tools=[{"type": "function", "name": name}]))
    )
    assert event.session.tools[0].name == name  # type: ignore[union-attr]
