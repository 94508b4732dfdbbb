"""Edges of the engine: late reports, limits, overrides and the driver's mistakes."""

from __future__ import annotations

import base64
import json
from typing import Any

from openrealtime import audio
from openrealtime.config import Defaults, apply_update, default_config
from openrealtime.models import RealtimeSessionUpdate, TranscriptionSessionUpdate
from openrealtime.session import CancelResponse, Close, Limits, Session, StartResponse
from openrealtime.turns import EnergyScorer, TurnDetector, TurnEvent
from tests.helpers import T0, new_session, only_error, send, types, update


def start(session: Session, **response: Any) -> str:
    """response.create; return the new response id."""
    event: dict[str, Any] = {"type": "response.create"}
    if response:
        event["response"] = response
    send(session, event)
    actions = session.actions_to_take()
    assert isinstance(actions[-1], StartResponse)
    return actions[-1].request.response_id


def append(session: Session, pcm: bytes) -> list[dict[str, Any]]:
    """input_audio_buffer.append of raw PCM16."""
    return send(
        session,
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()},
    )


class TestLateAndUnknownReports:
    """Reports from the driver about responses or items that are gone are ignored."""

    def test_reports_for_unknown_responses(self) -> None:
        """Every response_* method ignores an unknown response id."""
        session = new_session()
        session.response_text("resp_x", "a")
        session.response_audio("resp_x", b"\x00\x00")
        assert session.response_function_call("resp_x", "f", "{}") is None
        session.response_done("resp_x")
        session.response_failed("resp_x")
        assert session.data_to_send() == []

    def test_empty_text_is_ignored(self) -> None:
        """An empty text chunk opens nothing."""
        session = new_session()
        rid = start(session)
        session.response_text(rid, "")
        assert session.data_to_send() == []

    def test_failed_response(self) -> None:
        """response_failed ends the response with status failed."""
        session = new_session()
        rid = start(session)
        session.response_failed(rid)
        done, limits = [json.loads(d) for d in session.data_to_send()]
        assert done["response"]["status"] == "failed"
        assert done["response"]["status_details"] == {
            "type": "failed",
            "error": {
                "type": "server_error",
                "code": "responder_failed",
                "message": "The server failed to produce this response.",
            },
        }
        assert limits["type"] == "rate_limits.updated"

    def test_incomplete_response_with_reason(self) -> None:
        """response_done(status=incomplete, reason=max_output_tokens)."""
        session = new_session()
        rid = start(session, output_modalities=["text"])
        session.response_text(rid, "cut")
        session.response_done(rid, status="incomplete", reason="max_output_tokens")
        done = json.loads(session.data_to_send()[-2])
        assert done["response"]["status_details"] == {
            "type": "incomplete",
            "reason": "max_output_tokens",
        }
        assert done["response"]["output"][0]["status"] == "incomplete"

    def test_transcription_reports_for_unknown_items(self) -> None:
        """Transcription reports about deleted items are dropped."""
        session = new_session()
        session.transcription_delta("item_x", "a")
        session.transcription_completed("item_x", "a")
        session.transcription_failed("item_x", "no")
        assert session.data_to_send() == []

    def test_transcription_of_a_text_item(self) -> None:
        """A transcript for an item with no audio part is sent but stored nowhere."""
        session = new_session()
        item_id = send(
            session,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "x"}],
                },
            },
        )[0]["item"]["id"]
        session.transcription_delta(item_id, "")
        session.transcription_completed(item_id, "y", content_index=5)
        (event,) = [json.loads(d) for d in session.data_to_send()]
        assert event["transcript"] == "y"
        assert session.items[0].content[0].text == "x"  # type: ignore[union-attr]

    def test_timer_after_close(self) -> None:
        """handle_timer on a closed session does nothing."""
        session = new_session()
        send(session, {"type": "session.close"})
        session.actions_to_take()
        session.handle_timer(T0 + 10_000)
        assert session.actions_to_take() == []

    def test_close_during_a_response_cancels_it(self) -> None:
        """session.close while responding: the responder is cancelled, then Close."""
        session = new_session()
        rid = start(session)
        send(session, {"type": "session.close"})
        assert session.actions_to_take() == [CancelResponse(rid), Close(1000, "")]

    def test_events_to_send_decodes(self) -> None:
        """events_to_send gives typed events."""
        session = Session(now=T0)
        (event,) = session.events_to_send()
        assert event.__struct_config__.tag == "session.created"


class TestToolChoice:
    """Which calls a response may make."""

    def test_forced_function(self) -> None:
        """A forced function allows that function only."""
        session = new_session()
        tools = [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]
        update(session, {"tools": tools, "output_modalities": ["text"]})
        rid = start(session, tool_choice={"type": "function", "name": "b"})
        assert session.response_function_call(rid, "a", "{}") is None
        assert (
            session.response_function_call(rid, "b", "{}", call_id="call_1") == "call_1"
        )

    def test_call_after_text_closes_the_message(self) -> None:
        """Text then a call: the message item closes before the call item opens."""
        session = new_session()
        update(
            session,
            {
                "tools": [{"type": "function", "name": "f"}],
                "output_modalities": ["text"],
            },
        )
        rid = start(session)
        session.response_text(rid, "Let me look.")
        session.response_function_call(rid, "f", "{}")
        session.response_done(rid)
        events = [json.loads(d) for d in session.data_to_send()]
        assert types(events).index("response.output_text.done") < types(events).index(
            "response.function_call_arguments.done"
        )
        assert [o["type"] for o in events[-2]["response"]["output"]] == [
            "message",
            "function_call",
        ]
        assert events[-2]["response"]["usage"]["input_tokens"] > 0


class TestItemsEdges:
    """Item checks the schema cannot express."""

    def test_user_audio_item_with_audio(self) -> None:
        """A user audio part with base64 audio is kept; transcript defaults to null."""
        session = new_session()
        pcm = base64.b64encode(audio.silence(100, 24000)).decode()
        events = send(
            session,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_audio", "audio": pcm}],
                },
            },
        )
        assert events[0]["item"]["content"][0]["transcript"] is None

    def test_user_audio_item_with_bad_base64(self) -> None:
        """Audio that is not base64 is refused with its path."""
        session = new_session()
        error = only_error(
            send(
                session,
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_audio", "audio": "%%%"}],
                    },
                },
            )
        )
        assert error["param"] == "item.content[0].audio"

    def test_function_call_item_gets_a_call_id(self) -> None:
        """A client-made function_call without call_id gets one."""
        session = new_session()
        events = send(
            session,
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call", "name": "f", "arguments": "{}"},
            },
        )
        assert events[0]["item"]["call_id"].startswith("call_")

    def test_oldest_items_are_dropped_past_the_limit(self) -> None:
        """max_items bounds the conversation."""
        session = new_session(limits=Limits(max_items=2))
        for text in "abc":
            send(
                session,
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": text}],
                    },
                },
            )
        assert [i.content[0].text for i in session.items] == ["b", "c"]  # type: ignore[union-attr]


class TestResponseOverrides:
    """Per-response audio settings."""

    def test_bad_modalities(self) -> None:
        """Two modalities in response.create: invalid_value on response.output_modalities."""
        session = new_session()
        error = only_error(
            send(
                session,
                {
                    "type": "response.create",
                    "response": {"output_modalities": ["text", "audio"]},
                },
            )
        )
        assert error["param"] == "response.output_modalities"

    def test_format_and_voice_override(self) -> None:
        """A response may use its own format and voice."""
        session = new_session()
        rid = start(
            session,
            audio={"output": {"format": {"type": "audio/pcma"}, "voice": "sage"}},
        )
        session.response_audio(rid, audio.tone(20, 24000))
        session.response_done(rid)
        events = [json.loads(d) for d in session.data_to_send()]
        delta = next(e for e in events if e["type"] == "response.output_audio.delta")
        assert len(base64.b64decode(delta["delta"])) == 160
        assert events[-2]["response"]["audio"]["output"] == {
            "format": {"type": "audio/pcma"},
            "voice": "sage",
        }

    def test_voice_override_after_audio_is_refused(self) -> None:
        """The voice lock also holds for per-response voices."""
        session = new_session()
        rid = start(session)
        session.response_audio(rid, audio.tone(20, 24000))
        session.response_done(rid)
        session.data_to_send()
        error = only_error(
            send(
                session,
                {
                    "type": "response.create",
                    "response": {"audio": {"output": {"voice": "sage"}}},
                },
            )
        )
        assert error["code"] == "cannot_update_voice"


class TestTurnDetectionEdges:
    """The detector under configuration changes, manual commits and other rates."""

    def test_threshold_update_reconfigures_in_place(self) -> None:
        """A threshold change keeps the detector's timeline."""
        session = new_session()
        append(session, audio.silence(200, 24000))
        update(session, {"audio": {"input": {"turn_detection": {"threshold": 0.6}}}})
        events = append(session, audio.tone(400, 24000, 300.0, 0.5))
        assert (
            events[0]["audio_start_ms"] == 0
        )  # 200 ms - 300 ms of padding, floored at the buffer start

    def test_manual_commit_and_clear_with_vad_on(self) -> None:
        """commit and clear also reset the detector."""
        session = new_session()
        append(session, audio.tone(300, 24000, 300.0, 0.5))
        events = send(session, {"type": "input_audio_buffer.commit"})
        assert types(events)[0] == "input_audio_buffer.committed"
        assert events[0]["item_id"] == events[1]["item"]["id"]
        append(session, audio.tone(100, 24000, 300.0, 0.5))
        assert types(send(session, {"type": "input_audio_buffer.clear"})) == [
            "input_audio_buffer.cleared"
        ]

    def test_speech_end_during_a_response_starts_none(self) -> None:
        """interrupt_response false: the response goes on, and no second one starts."""
        session = new_session()
        update(
            session,
            {"audio": {"input": {"turn_detection": {"interrupt_response": False}}}},
        )
        start(session)
        events = append(
            session, audio.tone(300, 24000, 300.0, 0.5) + audio.silence(300, 24000)
        )
        assert "response.created" not in types(events)
        assert "response.done" not in types(events)

    def test_idle_timeout_waits_for_the_response(self) -> None:
        """The idle timer does nothing while a response is active."""
        session = new_session()
        update(
            session, {"audio": {"input": {"turn_detection": {"idle_timeout_ms": 5000}}}}
        )
        rid = start(session)
        session.response_done(rid)
        start(session)
        session.data_to_send()
        session.handle_timer(T0 + 100)
        assert session.data_to_send() == []

    def test_scorer_at_another_rate(self) -> None:
        """A 16 kHz scorer gets resampled audio."""
        seen: list[int] = []

        class Scorer(EnergyScorer):
            def score(self, frame: bytes) -> float:
                seen.append(len(frame))
                return super().score(frame)

        session = Session(now=T0, scorer_factory=lambda rate: Scorer(16000))
        session.data_to_send()
        append(session, audio.tone(200, 24000, 300.0, 0.5))
        assert seen and set(seen) == {640}  # 20 ms at 16 kHz

    def test_detector_helpers(self) -> None:
        """An empty frame scores 0, and reset drops partial frames."""
        scorer = EnergyScorer(24000)
        assert scorer.score(b"") == 0.0
        detector = TurnDetector(
            scorer, threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100
        )
        detector.feed(b"\x00\x00" * 100)
        detector.configure(threshold=0.9, prefix_padding_ms=10, silence_duration_ms=50)
        detector.reset()
        assert not detector.in_speech

    def test_batch_scorer_gets_a_feed_in_one_call(self) -> None:
        """A scorer with score_many gets the whole frames of a feed at once
        (one frame alone still goes to score), and the turn events are those
        of scoring frame by frame."""
        calls: list[tuple[str, int]] = []

        class Batch(EnergyScorer):
            def score(self, frame: bytes) -> float:
                calls.append(("score", len(frame)))
                return super().score(frame)

            def score_many(self, frames: bytes) -> list[float]:
                calls.append(("many", len(frames)))
                n = 2 * self.frame_samples
                return [
                    EnergyScorer.score(self, frames[i : i + n])
                    for i in range(0, len(frames), n)
                ]

        pcm = (
            audio.silence(300, 24000)
            + audio.tone(500, 24000, 300.0, 0.5)
            + audio.silence(700, 24000)
        )
        # Feeds of 1000, 2000 and 3000 bytes in turn: 1 to 4 whole frames of
        # 960 bytes each (20 ms at 24 kHz), with the remainder carried over.
        chunks, at = [], 0
        while at < len(pcm):
            size = 1000 * (len(chunks) % 3 + 1)
            chunks.append(pcm[at : at + size])
            at += size

        def run(scorer: EnergyScorer) -> list[TurnEvent]:
            detector = TurnDetector(
                scorer, threshold=0.5, prefix_padding_ms=100, silence_duration_ms=300
            )
            return [e for chunk in chunks for e in detector.feed(chunk)]

        batched = run(Batch(24000))
        assert batched == run(EnergyScorer(24000))
        assert [e.kind for e in batched] == ["started", "stopped"]
        assert ("score", 960) in calls and ("many", 1920) in calls
        assert ("many", 2880) in calls
        assert all(n % 960 == 0 and n > 960 for kind, n in calls if kind == "many")


class TestConfigEdges:
    """apply_update and default_config outside the engine."""

    def test_transcription_defaults_override(self) -> None:
        """Operator defaults for transcription sessions."""
        override = TranscriptionSessionUpdate(
            include=["item.input_audio_transcription.logprobs"]
        )
        config = default_config(
            "transcription",
            id="s",
            model="m",
            created_at=0,
            defaults=Defaults(transcription=override),
        )
        assert config.include == ["item.input_audio_transcription.logprobs"]

    def test_transcription_update_without_audio(self) -> None:
        """A transcription update with only include leaves audio alone."""
        config = default_config("transcription", id="s", model="m", created_at=0)
        new = apply_update(config, TranscriptionSessionUpdate(include=None))
        assert new.audio == config.audio

    def test_update_with_no_changes_returns_the_same_config(self) -> None:
        """An empty realtime update changes nothing (and costs nothing)."""
        config = default_config("realtime", id="s", model="m", created_at=0)
        assert apply_update(config, RealtimeSessionUpdate()) is config


class TestRemainingBranches:
    """One test per remaining branch of the core."""

    def test_session_from_an_initial_config(self) -> None:
        """A session minted with a config starts from it, with its own id and expiry."""
        base = default_config("realtime", id="sess_old", model="m", created_at=0)
        base = apply_update(base, RealtimeSessionUpdate(instructions="minted"))
        session = Session(now=T0, initial=base)
        assert session.config.instructions == "minted"  # type: ignore[union-attr]
        assert session.config.id != "sess_old"
        assert session.config.expires_at == int(T0) + 3600

    def test_transcript_for_a_text_part(self) -> None:
        """A transcript aimed at a text part leaves the part alone."""
        session = new_session()
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "x"}],
        }
        item_id = send(session, {"type": "conversation.item.create", "item": item})[0][
            "item"
        ]["id"]
        session.transcription_completed(item_id, "y")
        assert session.items[0].content[0].text == "x"  # type: ignore[union-attr]

    def test_idle_timer_after_vad_change(self) -> None:
        """An idle deadline set under server_vad does nothing once VAD is off."""
        session = new_session()
        update(
            session, {"audio": {"input": {"turn_detection": {"idle_timeout_ms": 5000}}}}
        )
        session.response_done(start(session))
        update(session, {"audio": {"input": {"turn_detection": None}}})
        session.data_to_send()
        session.handle_timer(T0 + 10)
        assert session.data_to_send() == []

    def test_items_with_every_optional_field(self) -> None:
        """Given transcripts and call ids are kept; images count no tokens."""
        session = new_session()
        user = {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_audio", "transcript": "said"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
            ],
        }
        events = send(session, {"type": "conversation.item.create", "item": user})
        assert events[0]["item"]["content"][0] == {
            "type": "input_audio",
            "transcript": "said",
        }
        call = {
            "type": "function_call",
            "call_id": "call_mine",
            "name": "f",
            "arguments": "{}",
        }
        assert (
            send(session, {"type": "conversation.item.create", "item": call})[0][
                "item"
            ]["call_id"]
            == "call_mine"
        )
        session.response_done(start(session))
        done = json.loads(session.data_to_send()[-2])
        assert done["response"]["usage"]["input_token_details"]["text_tokens"] == 2

    def test_response_format_override_alone(self) -> None:
        """A response may change its format and keep the session's voice."""
        session = new_session()
        rid = start(session, audio={"output": {"format": {"type": "audio/pcmu"}}})
        session.response_done(rid)
        done = json.loads(session.data_to_send()[-2])
        assert done["response"]["audio"]["output"]["voice"] == "alloy"

    def test_config_leaves(self) -> None:
        """max_output_tokens, truncation, semantic_vad in transcription sessions."""
        config = default_config("realtime", id="s", model="m", created_at=0)
        new = apply_update(
            config, RealtimeSessionUpdate(max_output_tokens=10, truncation="disabled")
        )
        assert (new.max_output_tokens, new.truncation) == (10, "disabled")  # type: ignore[union-attr]
        tconfig = default_config("transcription", id="s", model="m", created_at=0)
        update = msgspec_convert(
            {
                "type": "transcription",
                "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}},
            }
        )
        td = apply_update(tconfig, update).audio.input.turn_detection
        assert td is not None and td.__struct_config__.tag == "semantic_vad"
        assert (
            apply_update(
                tconfig, msgspec_convert({"type": "transcription", "audio": {}})
            )
            is tconfig
        )

    def test_ephemeral_key_shape(self) -> None:
        """ek_ + 32 hex characters (WIRE §5)."""
        from openrealtime.ids import ephemeral_key

        key = ephemeral_key()
        assert len(key) == 35 and key.startswith("ek_") and int(key[3:], 16) >= 0


def msgspec_convert(data: dict[str, Any]) -> Any:
    """A session update from a dict, through the real decoder."""
    from openrealtime.codec import decode_client_event

    event = decode_client_event(json.dumps({"type": "session.update", "session": data}))
    return event.session  # type: ignore[union-attr]
