"""session.update, rule by rule (spec RealtimeClientEventSessionUpdate, WIRE §3, §5, §6)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from openrealtime.codec import decode_client_event
from openrealtime.config import DEFAULT_INSTRUCTIONS, Defaults, default_config
from openrealtime.exceptions import InvalidState
from openrealtime.models import (
    RealtimeSessionUpdate,
    SessionCloseEvent,
    SessionUpdateEvent,
)
from tests.helpers import T0, effective, new_session, only_error, send, types, update


HOSTED_DEFAULT = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_1",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": DEFAULT_INSTRUCTIONS,
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "expires_at": int(T0) + 3600,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "idle_timeout_ms": None,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "voice": "alloy",
            "speed": 1.0,
        },
    },
    "include": None,
}


class TestStart:
    """1. Start: session.created carries the hosted GA defaults (WIRE §5)."""

    def test_session_created_is_the_hosted_default(self) -> None:
        """The first event is session.created with every hosted default, nulls included."""
        from openrealtime.ids import CountingIds
        from openrealtime.session import Session

        session = Session(now=T0, ids=CountingIds())
        (created,) = [json.loads(d) for d in session.data_to_send()]
        assert created == {
            "type": "session.created",
            "event_id": "event_2",
            "session": HOSTED_DEFAULT,
        }

    def test_default_instructions_are_byte_exact(self) -> None:
        """The default instructions end with the hosted U+2019 apostrophe."""
        assert DEFAULT_INSTRUCTIONS.startswith("Your knowledge cutoff is 2023-10.")
        assert DEFAULT_INSTRUCTIONS.endswith("even if you\u2019re asked about them.")

    def test_transcription_defaults(self) -> None:
        """A transcription session has its own object and a bare server_vad (WIRE §5)."""
        session = new_session("transcription")
        assert effective(session) == {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": "sess_1",
            "expires_at": int(T0) + 3600,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 200,
                    },
                }
            },
            "include": None,
        }

    def test_model_is_the_alias_connected(self) -> None:
        """session.model echoes the alias used in the URL (WIRE §5)."""
        assert (
            effective(new_session(model="gpt-realtime-mini"))["model"]
            == "gpt-realtime-mini"
        )

    def test_operator_defaults_override_the_hosted_ones(self) -> None:
        """Defaults live in one place and the operator can override them."""
        overrides = decode_client_event(
            b'{"type":"session.update","session":{"type":"realtime",'
            b'"instructions":"Be brief.","audio":{"output":{"voice":"marin"}}}}'
        )
        assert isinstance(overrides, SessionUpdateEvent)
        assert isinstance(overrides.session, RealtimeSessionUpdate)
        session = new_session(
            defaults=Defaults(realtime=overrides.session, session_minutes=30)
        )
        config = effective(session)
        assert config["instructions"] == "Be brief."
        assert config["audio"]["output"]["voice"] == "marin"
        assert config["expires_at"] == int(T0) + 1800

    def test_default_config_is_pure(self) -> None:
        """default_config builds the same config twice."""
        a = default_config("realtime", id="sess_x", model="m", created_at=0)
        b = default_config("realtime", id="sess_x", model="m", created_at=0)
        assert a == b and a.expires_at == 3600


class TestPartialUpdates:
    """2. "Only the fields that are present in the session.update are updated." """

    def test_only_present_fields_change(self) -> None:
        """An update of instructions leaves everything else as it was."""
        session = new_session()
        before = effective(session)
        events = update(session, {"instructions": "Talk like a pirate."})
        assert types(events) == ["session.updated"]
        expected = copy.deepcopy(before)
        expected["instructions"] = "Talk like a pirate."
        assert events[0]["session"] == expected == effective(session)

    def test_nested_objects_merge_field_by_field(self) -> None:
        """A threshold-only turn_detection keeps its silence_duration_ms."""
        session = new_session()
        update(
            session,
            {"audio": {"input": {"turn_detection": {"silence_duration_ms": 700}}}},
        )
        events = update(
            session, {"audio": {"input": {"turn_detection": {"threshold": 0.8}}}}
        )
        td = events[0]["session"]["audio"]["input"]["turn_detection"]
        assert td["threshold"] == 0.8
        assert td["silence_duration_ms"] == 700
        assert td["type"] == "server_vad"

    def test_output_update_keeps_input(self) -> None:
        """Updating audio.output.speed keeps audio.input and the voice."""
        session = new_session()
        before = effective(session)
        events = update(session, {"audio": {"output": {"speed": 1.25}}})
        after = events[0]["session"]
        assert after["audio"]["input"] == before["audio"]["input"]
        assert after["audio"]["output"] == {**before["audio"]["output"], "speed": 1.25}

    def test_union_type_change_replaces_the_object(self) -> None:
        """server_vad -> semantic_vad starts from semantic_vad's defaults."""
        session = new_session()
        events = update(
            session, {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
        )
        assert events[0]["session"]["audio"]["input"]["turn_detection"] == {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }

    @pytest.mark.parametrize(
        "key",
        ["threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"],
    )
    def test_other_variant_keys_are_unknown(self, key: str) -> None:
        """Under semantic_vad the server_vad keys are unknown parameters (WIRE 93-95)."""
        value: Any = {"threshold": 0.5, "idle_timeout_ms": 6000}.get(key, 100)
        session = new_session()
        td = {"type": "semantic_vad", key: value}
        error = only_error(
            update(session, {"audio": {"input": {"turn_detection": td}}})
        )
        param = f"session.audio.input.turn_detection.{key}"
        assert error == {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": f"Unknown parameter: '{param}'.",
            "param": param,
            "event_id": None,
        }

    def test_other_variant_keys_are_unknown_against_the_current_type(self) -> None:
        """With semantic_vad in effect, a bare threshold is an unknown parameter."""
        session = new_session()
        update(
            session, {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
        )
        error = only_error(
            update(
                session, {"audio": {"input": {"turn_detection": {"threshold": 0.9}}}}
            )
        )
        assert error["code"] == "unknown_parameter"
        assert error["param"] == "session.audio.input.turn_detection.threshold"

    def test_eagerness_is_unknown_under_server_vad(self) -> None:
        """semantic_vad's eagerness is unknown under server_vad."""
        session = new_session()
        error = only_error(
            update(
                session, {"audio": {"input": {"turn_detection": {"eagerness": "high"}}}}
            )
        )
        assert error["param"] == "session.audio.input.turn_detection.eagerness"

    def test_turn_detection_needs_a_type_when_off(self) -> None:
        """Turning VAD back on without a type is a missing parameter."""
        session = new_session()
        update(session, {"audio": {"input": {"turn_detection": None}}})
        error = only_error(
            update(
                session, {"audio": {"input": {"turn_detection": {"threshold": 0.7}}}}
            )
        )
        assert error["code"] == "missing_required_parameter"
        assert error["message"] == (
            "Missing required parameter: 'session.audio.input.turn_detection.type'."
        )

    def test_turn_detection_back_on_gets_defaults(self) -> None:
        """Re-enabling server_vad after null starts from its defaults."""
        session = new_session()
        update(session, {"audio": {"input": {"turn_detection": None}}})
        events = update(
            session, {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
        )
        expected = HOSTED_DEFAULT["audio"]["input"]["turn_detection"]  # type: ignore[index]
        assert events[0]["session"]["audio"]["input"]["turn_detection"] == expected

    def test_transcription_fills_language_and_prompt(self) -> None:
        """Turning on transcription shows language and prompt as null (WIRE 41)."""
        session = new_session()
        events = update(
            session, {"audio": {"input": {"transcription": {"model": "whisper-1"}}}}
        )
        assert events[0]["session"]["audio"]["input"]["transcription"] == {
            "model": "whisper-1",
            "language": None,
            "prompt": None,
        }
        events = update(
            session, {"audio": {"input": {"transcription": {"language": "en"}}}}
        )
        assert events[0]["session"]["audio"]["input"]["transcription"] == {
            "model": "whisper-1",
            "language": "en",
            "prompt": None,
        }

    def test_transcription_without_model_uses_the_operator_default(self) -> None:
        """{} turns transcription on with the configured default model."""
        session = new_session()
        events = update(session, {"audio": {"input": {"transcription": {}}}})
        model = events[0]["session"]["audio"]["input"]["transcription"]["model"]
        assert model == Defaults().transcription_model

    def test_noise_reduction_needs_a_type_when_off(self) -> None:
        """Turning noise reduction on needs its type."""
        session = new_session()
        error = only_error(
            update(session, {"audio": {"input": {"noise_reduction": {}}}})
        )
        assert error["param"] == "session.audio.input.noise_reduction.type"
        events = update(
            session, {"audio": {"input": {"noise_reduction": {"type": "far_field"}}}}
        )
        assert events[0]["session"]["audio"]["input"]["noise_reduction"] == {
            "type": "far_field"
        }
        events = update(session, {"audio": {"input": {"noise_reduction": {}}}})
        assert events[0]["session"]["audio"]["input"]["noise_reduction"] == {
            "type": "far_field"
        }

    def test_format_is_preserved_across_partial_updates(self) -> None:
        """G.711 formats survive unrelated updates (PAIN_POINTS §8)."""
        session = new_session()
        update(session, {"audio": {"input": {"format": {"type": "audio/pcmu"}}}})
        events = update(session, {"audio": {"output": {"voice": "ash"}}})
        assert events[0]["session"]["audio"]["input"]["format"] == {
            "type": "audio/pcmu"
        }

    def test_reasoning_appears_once_set(self) -> None:
        """reasoning is not shown until a client sets it, then merges."""
        session = new_session()
        assert "reasoning" not in effective(session)
        events = update(
            session, {"reasoning": {"effort": "low"}, "parallel_tool_calls": True}
        )
        assert events[0]["session"]["reasoning"] == {"effort": "low"}
        assert events[0]["session"]["parallel_tool_calls"] is True


class TestClearing:
    """2. "" clears instructions, [] clears tools, null clears a nullable field."""

    def test_empty_string_clears_instructions(self) -> None:
        """instructions "" is kept as "" (cleared)."""
        session = new_session()
        assert update(session, {"instructions": ""})[0]["session"]["instructions"] == ""

    def test_empty_array_clears_tools(self) -> None:
        """tools [] clears the tools; omitting tools keeps them (PAIN_POINTS §11)."""
        session = new_session()
        tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
        update(session, {"tools": [tool]})
        assert update(session, {"instructions": "x"})[0]["session"]["tools"] == [tool]
        assert update(session, {"tools": []})[0]["session"]["tools"] == []

    @pytest.mark.parametrize(
        ("patch", "path"),
        [
            (
                {"audio": {"input": {"turn_detection": None}}},
                ("audio", "input", "turn_detection"),
            ),
            (
                {"audio": {"input": {"transcription": None}}},
                ("audio", "input", "transcription"),
            ),
            (
                {"audio": {"input": {"noise_reduction": None}}},
                ("audio", "input", "noise_reduction"),
            ),
            ({"tracing": None}, ("tracing",)),
            ({"prompt": None}, ("prompt",)),
            ({"include": None}, ("include",)),
        ],
    )
    def test_null_clears_a_nullable_field(
        self, patch: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        """null clears, and session.updated shows the null explicitly."""
        session = new_session()
        setters: dict[tuple[str, ...], dict[str, Any]] = {
            ("audio", "input", "transcription"): {
                "audio": {"input": {"transcription": {"model": "whisper-1"}}}
            },
            ("audio", "input", "noise_reduction"): {
                "audio": {"input": {"noise_reduction": {"type": "near_field"}}}
            },
            ("tracing",): {"tracing": "auto"},
            ("prompt",): {"prompt": {"id": "pmpt_1"}},
            ("include",): {"include": ["item.input_audio_transcription.logprobs"]},
        }
        if path in setters:
            update(session, setters[path])
        events = update(session, patch)
        value: Any = events[0]["session"]
        for key in path[:-1]:
            value = value[key]
        assert path[-1] in value and value[path[-1]] is None

    def test_null_idle_timeout(self) -> None:
        """idle_timeout_ms accepts null (its own nullable leaf)."""
        session = new_session()
        update(
            session, {"audio": {"input": {"turn_detection": {"idle_timeout_ms": 6000}}}}
        )
        events = update(
            session, {"audio": {"input": {"turn_detection": {"idle_timeout_ms": None}}}}
        )
        assert (
            events[0]["session"]["audio"]["input"]["turn_detection"]["idle_timeout_ms"]
            is None
        )

    @pytest.mark.parametrize(
        ("patch", "param", "expected"),
        [
            ({"instructions": None}, "session.instructions", "a string"),
            ({"tools": None}, "session.tools", "an array"),
            (
                {"audio": {"output": {"voice": None}}},
                "session.audio.output.voice",
                None,
            ),
            (
                {"audio": {"input": {"turn_detection": {"create_response": None}}}},
                "session.audio.input.turn_detection.create_response",
                "a boolean",
            ),
            (
                {"audio": {"input": {"format": None}}},
                "session.audio.input.format",
                "an object",
            ),
        ],
    )
    def test_null_in_a_non_nullable_field_is_invalid_type(
        self, patch: dict[str, Any], param: str, expected: str | None
    ) -> None:
        """null where the field is not nullable is invalid_type, and nothing changes."""
        session = new_session()
        before = effective(session)
        error = only_error(update(session, patch))
        assert error["code"] == "invalid_type"
        assert error["param"] == param
        if expected is not None:
            assert error["message"] == (
                f"Invalid type for '{param}': expected {expected}, but got null instead."
            )
        assert effective(session) == before


class TestAllOrNothing:
    """2. A session.update is all-or-nothing (WIRE §3)."""

    def test_one_bad_field_discards_the_whole_update(self) -> None:
        """Valid instructions next to a bad voice are not applied either."""
        session = new_session()
        before = effective(session)
        events = update(
            session,
            {"instructions": "New!", "audio": {"output": {"voice": "nope"}}},
            event_id="evt_NbVvtzwXpGmqUT3Jt",
        )
        assert events == [
            {
                "type": "error",
                "event_id": "event_3",
                "error": {
                    "type": "invalid_request_error",
                    "code": "invalid_value",
                    "message": "Invalid value: 'nope'. Supported values are: 'alloy', 'ash', "
                    "'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', and "
                    "'cedar'.",
                    "param": "session.audio.output.voice",
                    "event_id": "evt_NbVvtzwXpGmqUT3Jt",
                },
            }
        ]
        assert effective(session) == before

    def test_semantic_error_also_discards(self) -> None:
        """A rule broken after merging (variant keys) also leaves the config alone."""
        session = new_session()
        before = effective(session)
        update(
            session,
            {
                "instructions": "New!",
                "audio": {
                    "input": {
                        "turn_detection": {"type": "semantic_vad", "threshold": 1}
                    }
                },
            },
        )
        assert effective(session) == before

    def test_error_event_id_is_null_without_client_id(self) -> None:
        """error.event_id is null when the client sent none, and the outer id is fresh."""
        session = new_session()
        first = only_error(update(session, {"bogus": 1}))
        assert first["event_id"] is None
        events = update(session, {"bogus": 1}, event_id="a-uuid-1234")
        assert events[0]["error"]["event_id"] == "a-uuid-1234"
        assert events[0]["event_id"].startswith("event_")

    def test_socket_stays_usable_after_errors(self) -> None:
        """Errors are not fatal: a later valid update is applied (WIRE §1)."""
        session = new_session()
        only_error(update(session, {"bogus": 1}))
        assert types(update(session, {"instructions": "ok"})) == ["session.updated"]


class TestSessionType:
    """2. session.type is required and cannot switch (WIRE 74, 78, 80)."""

    def test_type_is_required(self) -> None:
        """A session without type: missing_required_parameter session.type."""
        session = new_session()
        error = only_error(
            send(session, {"type": "session.update", "session": {"instructions": "x"}})
        )
        assert error["code"] == "missing_required_parameter"
        assert error["message"] == "Missing required parameter: 'session.type'."
        assert error["param"] == "session.type"

    def test_transcription_update_on_realtime_session(self) -> None:
        """The hosted sentence, code invalid_parameter."""
        session = new_session()
        events = send(
            session,
            {
                "type": "session.update",
                "event_id": "e9",
                "session": {"type": "transcription"},
            },
        )
        assert only_error(events) == {
            "type": "invalid_request_error",
            "code": "invalid_parameter",
            "message": "Passing a transcription session update event to a realtime session "
            "is not allowed.",
            "param": "session.type",
            "event_id": "e9",
        }

    def test_realtime_update_on_transcription_session(self) -> None:
        """The mirror case on a transcription session."""
        session = new_session("transcription")
        error = only_error(update(session, {}))
        assert error["message"] == (
            "Passing a realtime session update event to a transcription session is not "
            "allowed."
        )

    def test_transcription_session_updates(self) -> None:
        """A transcription session takes transcription updates."""
        session = new_session("transcription")
        events = send(
            session,
            {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {
                        "input": {"transcription": {"model": "gpt-4o-transcribe"}}
                    },
                    "include": ["item.input_audio_transcription.logprobs"],
                },
            },
        )
        assert types(events) == ["session.updated"]
        config = events[0]["session"]
        assert config["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
        assert config["include"] == ["item.input_audio_transcription.logprobs"]


class TestModel:
    """2. model is fixed when the session starts."""

    def test_same_model_is_accepted(self) -> None:
        """Re-sending the connected model is accepted (WIRE 43)."""
        session = new_session()
        assert types(update(session, {"model": "gpt-realtime"})) == ["session.updated"]

    def test_different_model_is_kept_unchanged(self) -> None:
        """A different model is accepted and the original kept (hosted, reported live)."""
        session = new_session()
        events = update(session, {"model": "gpt-realtime-mini", "instructions": "hi"})
        assert events[0]["session"]["model"] == "gpt-realtime"
        assert events[0]["session"]["instructions"] == "hi"

    def test_operator_can_reject_model_changes(self) -> None:
        """With reject_model_change, a different model is an error."""
        session = new_session(defaults=Defaults(reject_model_change=True))
        error = only_error(update(session, {"model": "gpt-realtime-mini"}))
        assert error["code"] == "invalid_parameter"
        assert error["param"] == "session.model"
        assert types(update(session, {"model": "gpt-realtime"})) == ["session.updated"]


class TestVoiceLock:
    """2. voice may change until assistant audio exists (WIRE 102, 45)."""

    def _speak(self, session: Any) -> None:
        send(session, {"type": "response.create"})
        (action,) = session.actions_to_take()
        rid = action.request.response_id
        session.response_audio(rid, b"\x00\x00" * 480)
        session.response_done(rid)
        session.data_to_send()

    def test_voice_changes_before_audio(self) -> None:
        """Before any assistant audio the voice changes freely."""
        session = new_session()
        events = update(session, {"audio": {"output": {"voice": "verse"}}})
        assert events[0]["session"]["audio"]["output"]["voice"] == "verse"

    def test_text_only_responses_do_not_lock(self) -> None:
        """A text response produces no audio, so the voice stays free."""
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        send(session, {"type": "response.create"})
        (action,) = session.actions_to_take()
        session.response_text(action.request.response_id, "hi")
        session.response_audio(action.request.response_id, b"\x00\x00" * 480)
        session.response_done(action.request.response_id)
        session.data_to_send()
        assert types(update(session, {"audio": {"output": {"voice": "ash"}}})) == [
            "session.updated"
        ]

    def test_different_voice_after_audio_is_refused(self) -> None:
        """cannot_update_voice, param null, and nothing else changes."""
        session = new_session()
        self._speak(session)
        before = effective(session)
        events = update(
            session,
            {"instructions": "x", "audio": {"output": {"voice": "marin"}}},
            event_id="v1",
        )
        assert only_error(events) == {
            "type": "invalid_request_error",
            "code": "cannot_update_voice",
            "message": "Cannot update a conversation's voice if assistant audio is present.",
            "param": None,
            "event_id": "v1",
        }
        assert effective(session) == before

    def test_same_voice_after_audio_passes(self) -> None:
        """Clients that resend the whole config (openai-agents) are not refused."""
        session = new_session()
        self._speak(session)
        events = update(
            session, {"audio": {"output": {"voice": "alloy", "speed": 1.1}}}
        )
        assert types(events) == ["session.updated"]
        assert events[0]["session"]["audio"]["output"]["speed"] == 1.1


class TestSessionUpdated:
    """2. session.updated: the full effective config, never a diff."""

    def test_full_config_with_nulls_same_id_and_expiry(self) -> None:
        """Same id and expires_at, explicit nulls, and no client event_id."""
        session = new_session()
        events = update(session, {"tracing": "auto"}, event_id="client-1")
        (event,) = events
        assert event["type"] == "session.updated"
        assert event["event_id"] != "client-1" and "client-1" not in json.dumps(event)
        expected = dict(HOSTED_DEFAULT, tracing="auto")
        assert event["session"] == expected

    def test_unknown_keys_are_never_echoed(self) -> None:
        """Unknown keys are refused, not echoed back as if applied (PAIN_POINTS §5)."""
        session = new_session()
        error = only_error(update(session, {"temperature": 0.7}))
        assert error["message"] == "Unknown parameter: 'session.temperature'."
        assert "temperature" not in effective(session)

    def test_every_accepted_update_is_acknowledged_once(self) -> None:
        """n accepted updates give n session.updated, in order."""
        session = new_session()
        seen = []
        for i in range(20):
            events = update(session, {"instructions": f"v{i}"})
            seen += [e["session"]["instructions"] for e in events]
        assert seen == [f"v{i}" for i in range(20)]


class TestStateTable:
    """3. Which client events are legal in which state."""

    def test_transcription_session_has_no_responses(self) -> None:
        """response.create on a transcription session: one error, one format."""
        session = new_session("transcription")
        error = only_error(send(session, {"type": "response.create", "event_id": "r1"}))
        assert error == {
            "type": "invalid_request_error",
            "code": "invalid_event",
            "message": "The event 'response.create' is not supported in a transcription "
            "session.",
            "param": "type",
            "event_id": "r1",
        }

    def test_closed_session_refuses_input(self) -> None:
        """Feeding a closed session is a driver bug: InvalidState."""
        session = new_session()
        send(session, {"type": "session.close"})
        (action,) = session.actions_to_take()
        assert (action.code, action.reason) == (1000, "")
        with pytest.raises(InvalidState, match="session is closed"):
            session.receive_text('{"type":"session.update"}', T0)
        with pytest.raises(InvalidState, match="session is closed"):
            session.receive_binary(T0)
        with pytest.raises(InvalidState, match="session is closed"):
            session.receive_event(SessionCloseEvent(), T0)
        assert session.get_timer() is None

    def test_expiry_closes_with_1001(self) -> None:
        """At expires_at the session closes with 1001 and the hosted sentence (WIRE §7)."""
        session = new_session()
        assert session.get_timer() == T0 + 3600
        session.handle_timer(T0 + 100)
        assert session.actions_to_take() == []
        session.handle_timer(T0 + 3600)
        (action,) = session.actions_to_take()
        assert (action.code, action.reason) == (
            1001,
            "Your session hit the maximum duration of 60 minutes.",
        )

    def test_binary_frame(self) -> None:
        """A binary frame gets invalid_event and the session stays open (WIRE 84)."""
        session = new_session()
        session.receive_binary(T0)
        (event,) = [json.loads(d) for d in session.data_to_send()]
        assert event["error"]["code"] == "invalid_event"
        assert event["error"]["message"] == (
            "Expected a text WebSocket message; binary frames are not supported."
        )

    def test_unexpected_exception_becomes_server_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bug in the engine becomes a generic server_error; details stay in the log."""
        session = new_session()

        def boom(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("secret detail")

        monkeypatch.setattr("openrealtime.session.apply_update", boom)
        events = update(session, {"instructions": "x"}, event_id="e1")
        error = only_error(events)
        assert error["type"] == "server_error"
        assert error["event_id"] == "e1"
        assert "secret" not in error["message"]


class TestUnchangedParts:
    """Parts an update sends as they already are keep their objects (a
    client such as openai-agents resends its whole config each time), and
    the effective config is the same as if they had been rebuilt."""

    FULL = {
        "instructions": "Be brief.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "whisper-1", "language": "en"},
                "noise_reduction": {"type": "near_field"},
                "turn_detection": {"type": "server_vad", "threshold": 0.6},
            },
            "output": {
                "voice": "marin",
                "speed": 1.0,
                "format": {"type": "audio/pcm", "rate": 24000},
            },
        },
    }

    def test_a_repeated_update_keeps_the_audio_config(self) -> None:
        session = new_session()
        assert types(update(session, self.FULL)) == ["session.updated"]
        before = session.config
        seen = effective(session)
        (event,) = update(session, self.FULL)
        assert event["type"] == "session.updated"
        assert session.config.audio is before.audio
        assert effective(session) == seen == event["session"]

    def test_one_changed_field_changes_only_its_part(self) -> None:
        session = new_session()
        update(session, self.FULL)
        before = session.config.audio
        patch = copy.deepcopy(self.FULL)
        patch["audio"]["input"]["turn_detection"]["silence_duration_ms"] = 700
        (event,) = update(session, patch)
        after = session.config.audio
        assert after.output is before.output
        assert after.input.format is before.input.format
        assert after.input.transcription is before.input.transcription
        detection = event["session"]["audio"]["input"]["turn_detection"]
        assert (detection["threshold"], detection["silence_duration_ms"]) == (0.6, 700)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("speed", 1.5), ("voice", "cedar"), ("format", {"type": "audio/pcmu"})],
    )
    def test_each_output_field_still_changes(self, field: str, value: Any) -> None:
        session = new_session()
        update(session, self.FULL)
        patch = copy.deepcopy(self.FULL)
        patch["audio"]["output"][field] = value
        (event,) = update(session, patch)
        assert event["session"]["audio"]["output"][field] == value

    def test_a_transcription_field_still_changes(self) -> None:
        session = new_session()
        update(session, self.FULL)
        patch = copy.deepcopy(self.FULL)
        patch["audio"]["input"]["transcription"]["language"] = "de"
        patch["audio"]["input"]["noise_reduction"] = {"type": "far_field"}
        (event,) = update(session, patch)
        audio_input = event["session"]["audio"]["input"]
        assert audio_input["transcription"]["language"] == "de"
        assert audio_input["noise_reduction"] == {"type": "far_field"}

    def test_an_integer_is_not_kept_for_a_float(self) -> None:
        """``_same`` compares types too: 1 == 1.0 in Python, not in JSON."""
        from openrealtime.config import _same

        assert _same(0.6, 0.6)
        assert not _same(1, 1.0)
        assert not _same(True, 1)
        assert not _same(None, False)
