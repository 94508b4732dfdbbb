"""Issue 13's engine rules: interruptions, nulls, limits, out-of-band, validation.

Each class is one rule of the hosted API that stock clients (openai-agents,
LiveKit, pipecat) depend on, driven through the engine alone.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from openrealtime import audio
from openrealtime.models.responses import ResponseStatusError
from openrealtime.models.server_events import LogProb
from openrealtime.session import CancelResponse, Close, Limits, Session, StartResponse
from tests.helpers import T0, new_session, only_error, send, types, update


def start(session: Session, **response: Any) -> str:
    """response.create; return the new response id."""
    event: dict[str, Any] = {"type": "response.create"}
    if response:
        event["response"] = response
    events = send(session, event)
    assert types(events) == ["response.created"], events
    actions = session.actions_to_take()
    assert isinstance(actions[-1], StartResponse)
    return actions[-1].request.response_id


def request_of(session: Session, **response: Any) -> Any:
    """response.create; return the request the responder gets."""
    event: dict[str, Any] = {"type": "response.create"}
    if response:
        event["response"] = response
    send(session, event)
    (action,) = session.actions_to_take()
    assert isinstance(action, StartResponse)
    return action.request


def drain(session: Session) -> list[dict[str, Any]]:
    return [json.loads(d) for d in session.data_to_send()]


def done_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    (done,) = [e for e in events if e["type"] == "response.done"]
    response: dict[str, Any] = done["response"]
    return response


def tone(ms: int) -> bytes:
    return audio.tone(ms, 24000, 440.0)


def truncate(session: Session, item_id: str, ms: int) -> list[dict[str, Any]]:
    return send(
        session,
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": ms,
        },
    )


def retrieve(session: Session, item_id: str) -> dict[str, Any]:
    (event,) = send(session, {"type": "conversation.item.retrieve", "item_id": item_id})
    item: dict[str, Any] = event["item"]
    return item


def streaming(session: Session) -> tuple[str, str]:
    """A response that said "One two " over 1 s of audio; returns (rid, item id)."""
    rid = start(session)
    session.response_text(rid, "One ")
    session.response_audio(rid, tone(500))
    session.response_text(rid, "two ")
    session.response_audio(rid, tone(500))
    events = drain(session)
    item_id = next(e for e in events if e["type"] == "conversation.item.added")["item"][
        "id"
    ]
    return rid, item_id


class TestTruncateWhileStreaming:
    """openai-agents' interrupt(): truncate the item whose audio still streams."""

    def test_truncate_mid_stream_then_completion_keeps_the_truncation(self) -> None:
        session = new_session()
        rid, item_id = streaming(session)
        events = truncate(session, item_id, 700)
        assert types(events) == ["conversation.item.truncated"]
        assert events[0]["audio_end_ms"] == 700
        # The responder goes on: nothing more of that item reaches the client.
        session.response_text(rid, "three")
        session.response_audio(rid, tone(500))
        assert drain(session) == []
        session.response_done(rid)
        events = drain(session)
        transcript_done = next(
            e for e in events if e["type"] == "response.output_audio_transcript.done"
        )
        assert transcript_done["transcript"] == "One two "
        item = done_of(events)["output"][0]
        assert item["content"] == [{"type": "output_audio", "transcript": "One two "}]
        # The conversation keeps what was heard: 700 ms and its words.
        (part,) = retrieve(session, item_id)["content"]
        assert part["transcript"] == "One two "
        assert len(base64.b64decode(part["audio"])) == 700 * 48
        # And the next truncation is measured against 700 ms.
        error = only_error(truncate(session, item_id, 800))
        assert (
            error["message"] == "Audio content of 700ms is already shorter than 800ms"
        )

    def test_truncate_then_cancel_as_openai_agents_does(self) -> None:
        session = new_session()
        rid, item_id = streaming(session)
        truncate(session, item_id, 300)
        events = send(session, {"type": "response.cancel"})
        assert done_of(events)["output"][0]["content"] == [
            {"type": "output_audio", "transcript": "One "}
        ]
        assert CancelResponse(rid) in session.actions_to_take()

    def test_truncate_to_zero_keeps_no_words(self) -> None:
        session = new_session()
        rid, item_id = streaming(session)
        truncate(session, item_id, 0)
        session.response_done(rid)
        drain(session)
        assert retrieve(session, item_id)["content"][0]["transcript"] == ""

    def test_too_long_is_measured_against_the_audio_so_far(self) -> None:
        session = new_session()
        _, item_id = streaming(session)
        error = only_error(truncate(session, item_id, 57340))
        assert error == {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Audio content of 1000ms is already shorter than 57340ms",
            "param": None,
            "event_id": None,
        }
        # The whole audio may be kept: equal is not longer.
        assert types(truncate(session, item_id, 1000)) == [
            "conversation.item.truncated"
        ]

    def test_text_item_cannot_be_truncated(self) -> None:
        """An assistant text part is not audio (and has no audio to measure)."""
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        rid = start(session)
        session.response_text(rid, "words")
        session.response_done(rid)
        item_id = done_of(drain(session))["output"][0]["id"]
        assert only_error(truncate(session, item_id, 0))["param"] == "content_index"

    def test_assistant_item_created_by_the_client(self) -> None:
        """An output_audio part the client created has no audio: 0 ms long."""
        session = new_session()
        (added, _) = send(
            session,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_audio", "transcript": "Hi"}],
                },
            },
        )
        item_id = added["item"]["id"]
        assert types(truncate(session, item_id, 0)) == ["conversation.item.truncated"]
        assert retrieve(session, item_id)["content"] == [
            {"type": "output_audio", "transcript": ""}
        ]


class TestTranscriptAfterCancel:
    """A cancelled item's transcript is what was streamed, not what was planned."""

    def test_transcript_after_cancel_equals_what_was_streamed(self) -> None:
        session = new_session()
        rid, item_id = streaming(session)
        events = send(session, {"type": "response.cancel"})
        done = next(
            e for e in events if e["type"] == "response.output_audio_transcript.done"
        )
        assert done["transcript"] == "One two "
        assert retrieve(session, item_id)["content"][0]["transcript"] == "One two "
        # What the responder still had to say never joins the item.
        session.response_text(rid, "three")
        assert retrieve(session, item_id)["content"][0]["transcript"] == "One two "

    def test_barge_in_keeps_what_was_streamed(self) -> None:
        session = new_session()
        rid, item_id = streaming(session)
        loud = base64.b64encode(audio.tone(300, 24000, 300.0, 0.5)).decode()
        send(session, {"type": "input_audio_buffer.append", "audio": loud})
        assert retrieve(session, item_id)["content"][0]["transcript"] == "One two "
        assert CancelResponse(rid) in session.actions_to_take()


class TestNullsInResponseCreate:
    """LiveKit sends "instructions": null; every optional field may be null."""

    FIELDS = (
        "output_modalities",
        "instructions",
        "audio",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "max_output_tokens",
        "conversation",
        "metadata",
        "prompt",
        "input",
    )

    @pytest.mark.parametrize("field", FIELDS)
    def test_null_is_absent(self, field: str) -> None:
        session = new_session()
        update(session, {"instructions": "Be brief.", "max_output_tokens": 99})
        request = request_of(session, **{field: None})
        assert request.instructions == "Be brief."
        assert request.max_output_tokens == 99
        assert request.output_modalities == ["audio"]
        assert request.out_of_band is False
        assert request.conversation == session.items

    def test_nested_nulls_are_absent(self) -> None:
        session = new_session()
        for audio_field in (
            {"output": None},
            {"output": {"voice": None, "format": None}},
        ):
            rid = start(session, audio=audio_field)
            session.response_done(rid)
            assert done_of(drain(session))["audio"]["output"] == {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
            }

    def test_session_update_keeps_its_stricter_rule(self) -> None:
        session = new_session()
        error = only_error(update(session, {"instructions": None}))
        assert (error["code"], error["param"]) == (
            "invalid_type",
            "session.instructions",
        )


class TestMaxOutputTokens:
    """A reply that reaches max_output_tokens ends incomplete."""

    def test_text_is_cut_at_the_limit(self) -> None:
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        rid = start(session, max_output_tokens=3)
        session.response_text(rid, "abcd")  # 1 token
        session.response_text(rid, "efghijklmnopqrstuvwxyz")  # 6 more: cut to 2
        events = drain(session)
        deltas = [
            e["delta"] for e in events if e["type"] == "response.output_text.delta"
        ]
        assert deltas == ["abcd", "efghijkl"]
        done = done_of(events)
        assert done["status"] == "incomplete"
        assert done["status_details"] == {
            "type": "incomplete",
            "reason": "max_output_tokens",
        }
        assert done["usage"]["output_tokens"] == 3
        assert done["output"][0]["status"] == "incomplete"
        # The responder is stopped; what it still sends is dropped.
        assert session.actions_to_take() == [CancelResponse(rid)]
        session.response_text(rid, "more")
        session.response_done(rid)
        assert drain(session) == []

    def test_session_limit_cuts_audio(self) -> None:
        session = new_session()
        update(session, {"max_output_tokens": 4})
        rid = start(session)
        session.response_audio(rid, tone(1000))  # 20 tokens: cut to 200 ms
        events = drain(session)
        (delta,) = [e for e in events if e["type"] == "response.output_audio.delta"]
        assert len(base64.b64decode(delta["delta"])) == 200 * 48
        done = done_of(events)
        assert done["status_details"]["reason"] == "max_output_tokens"
        assert done["usage"]["output_token_details"]["audio_tokens"] == 4

    def test_no_room_left_sends_nothing_more(self) -> None:
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        rid = start(session, max_output_tokens=1)
        session.response_text(rid, "abcd")  # exactly the limit: not yet over
        assert "response.done" not in types(drain(session))
        session.response_text(rid, "e")
        events = drain(session)
        assert "response.output_text.delta" not in types(events)
        assert done_of(events)["status"] == "incomplete"

    def test_no_room_for_audio(self) -> None:
        session = new_session()
        rid = start(session, max_output_tokens=2)
        session.response_audio(rid, tone(100))  # 2 tokens
        session.response_audio(rid, tone(100))
        events = drain(session)
        assert types(events).count("response.output_audio.delta") == 1
        assert done_of(events)["status"] == "incomplete"

    def test_function_call_over_the_limit_is_not_made(self) -> None:
        session = new_session()
        update(session, {"tools": [{"type": "function", "name": "lookup"}]})
        rid = start(session, max_output_tokens=2)
        assert session.response_function_call(rid, "lookup", '{"q": "weather"}') is None
        events = drain(session)
        assert "response.function_call_arguments.done" not in types(events)
        assert done_of(events)["status_details"]["reason"] == "max_output_tokens"

    def test_inf_is_no_limit(self) -> None:
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        rid = start(session, max_output_tokens="inf")
        session.response_text(rid, "x" * 10_000)
        session.response_done(rid)
        assert done_of(drain(session))["status"] == "completed"

    def test_responder_that_stops_early(self) -> None:
        """A chat model's finish_reason "length" arrives as response_done(...)."""
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        rid = start(session)
        session.response_text(rid, "partial")
        session.response_done(rid, status="incomplete", reason="max_output_tokens")
        assert done_of(drain(session))["status_details"] == {
            "type": "incomplete",
            "reason": "max_output_tokens",
        }


class TestOutOfBand:
    """conversation "none": item references, and beside an in-band response."""

    def test_spec_example_with_item_reference(self) -> None:
        session = new_session()
        (added, _) = send(
            session,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "A long message."}],
                },
            },
        )
        item_id = added["item"]["id"]
        request = request_of(
            session,
            instructions="Provide a concise answer.",
            tools=[],
            conversation="none",
            output_modalities=["text"],
            metadata={"response_purpose": "summarization"},
            input=[
                {"type": "item_reference", "id": item_id},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {
                            "type": "input_text",
                            "text": "Summarize the above message in one sentence.",
                        }
                    ],
                },
            ],
        )
        assert request.out_of_band
        assert request.conversation[0] is session.items[0]
        assert request.conversation[1].content[0].text.startswith("Summarize")
        assert len(session.items) == 1

    def test_unknown_reference(self) -> None:
        session = new_session()
        error = only_error(
            send(
                session,
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "input": [{"type": "item_reference", "id": "item_nope"}],
                    },
                },
            )
        )
        assert (error["code"], error["param"]) == (
            "item_not_found",
            "response.input[0].id",
        )

    def test_out_of_band_beside_in_band(self) -> None:
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        in_band = start(session)
        oob = start(session, conversation="none")
        assert session.response_active(in_band) and session.response_active(oob)
        assert session.active_response_id == in_band
        # A second in-band one is still refused.
        error = only_error(send(session, {"type": "response.create"}))
        assert error["code"] == "conversation_already_has_active_response"
        session.response_text(oob, "side")
        session.response_text(in_band, "main")
        session.response_done(oob)
        events = drain(session)
        oob_done = done_of(events)
        assert oob_done["id"] == oob and oob_done["conversation_id"] is None
        assert [i.id for i in session.items] == [
            e["item"]["id"] for e in events if e["type"] == "conversation.item.added"
        ]
        assert session.response_active(in_band) and not session.response_active(oob)
        session.response_done(in_band)
        assert done_of(drain(session))["status"] == "completed"

    def test_cancel_picks_the_response(self) -> None:
        session = new_session()
        oob1 = start(session, conversation="none")
        oob2 = start(session, conversation="none")
        # No id and no in-band response: the newest out-of-band one.
        events = send(session, {"type": "response.cancel"})
        assert done_of(events)["id"] == oob2
        events = send(session, {"type": "response.cancel", "response_id": oob1})
        assert done_of(events)["id"] == oob1
        error = only_error(
            send(session, {"type": "response.cancel", "response_id": oob1})
        )
        assert error["code"] == "response_cancel_not_active"

    def test_barge_in_leaves_out_of_band_alone(self) -> None:
        session = new_session()
        oob = start(session, conversation="none")
        loud = base64.b64encode(audio.tone(300, 24000, 300.0, 0.5)).decode()
        send(session, {"type": "input_audio_buffer.append", "audio": loud})
        assert session.response_active(oob)

    def test_close_stops_every_response(self) -> None:
        session = new_session()
        in_band = start(session)
        oob = start(session, conversation="none")
        send(session, {"type": "session.close"})
        actions = session.actions_to_take()
        assert CancelResponse(in_band) in actions and CancelResponse(oob) in actions
        assert isinstance(actions[-1], Close)
        assert not session.response_active(oob)


class TestRetrieveWithAudio:
    """conversation.item.retrieve returns user and assistant audio."""

    def test_user_audio_as_committed(self) -> None:
        session = new_session()
        update(session, {"audio": {"input": {"turn_detection": None}}})
        pcm = audio.tone(300, 24000, 300.0)
        send(
            session,
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(pcm).decode(),
            },
        )
        (committed, added, _) = send(session, {"type": "input_audio_buffer.commit"})
        # conversation.item.added does not carry the audio; retrieve does.
        assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
        part = retrieve(session, committed["item_id"])["content"][0]
        assert base64.b64decode(part["audio"]) == pcm
        assert part["transcript"] is None

    def test_assistant_audio_in_the_output_format(self) -> None:
        session = new_session()
        update(session, {"audio": {"output": {"format": {"type": "audio/pcmu"}}}})
        rid = start(session)
        session.response_text(rid, "Hi")
        session.response_audio(rid, tone(100))
        session.response_done(rid)
        item_id = done_of(drain(session))["output"][0]["id"]
        part = retrieve(session, item_id)["content"][0]
        assert len(base64.b64decode(part["audio"])) == 800  # 8 kHz, a byte a sample
        assert part["transcript"] == "Hi"

    def test_audio_kept_is_bounded(self) -> None:
        session = new_session(limits=Limits(max_audio_bytes=100 * 48))
        rid = start(session)
        session.response_audio(rid, tone(60))
        session.response_done(rid)
        first = done_of(drain(session))["output"][0]["id"]
        rid = start(session)
        session.response_audio(rid, tone(60))
        session.response_done(rid)
        second = done_of(drain(session))["output"][0]["id"]
        # The oldest audio was let go to keep the newest.
        assert "audio" not in retrieve(session, first)["content"][0]
        assert "audio" in retrieve(session, second)["content"][0]
        # Audio larger than the whole limit is not kept at all.
        rid = start(session)
        session.response_audio(rid, tone(200))
        session.response_done(rid)
        third = done_of(drain(session))["output"][0]["id"]
        assert "audio" not in retrieve(session, third)["content"][0]
        # Truncating an item whose audio is gone still works.
        assert types(truncate(session, third, 100)) == ["conversation.item.truncated"]

    def test_deleted_items_free_their_audio(self) -> None:
        session = new_session(limits=Limits(max_audio_bytes=100 * 48))
        rid = start(session)
        session.response_audio(rid, tone(60))
        session.response_done(rid)
        first = done_of(drain(session))["output"][0]["id"]
        send(session, {"type": "conversation.item.delete", "item_id": first})
        rid = start(session)
        session.response_audio(rid, tone(60))
        session.response_done(rid)
        second = done_of(drain(session))["output"][0]["id"]
        assert "audio" in retrieve(session, second)["content"][0]

    def test_out_of_band_audio_is_not_kept(self) -> None:
        session = new_session()
        rid = start(session, conversation="none")
        session.response_audio(rid, tone(100))
        session.response_done(rid)
        item_id = done_of(drain(session))["output"][0]["id"]
        assert only_error(retrieve_error(session, item_id))["code"] == "item_not_found"


def retrieve_error(session: Session, item_id: str) -> list[dict[str, Any]]:
    return send(session, {"type": "conversation.item.retrieve", "item_id": item_id})


class TestIdleTimeout:
    """timeout_triggered: the idle audio is committed and a response follows."""

    def test_real_offsets_and_an_item_that_exists(self) -> None:
        session = new_session()
        update(
            session, {"audio": {"input": {"turn_detection": {"idle_timeout_ms": 5000}}}}
        )
        quiet = base64.b64encode(audio.silence(500, 24000)).decode()
        send(session, {"type": "input_audio_buffer.append", "audio": quiet})
        rid = start(session)
        session.response_done(rid)
        drain(session)
        # 5.2 s of silence arrives while the client waits.
        for _ in range(13):
            silence = base64.b64encode(audio.silence(400, 24000)).decode()
            send(session, {"type": "input_audio_buffer.append", "audio": silence})
        deadline = session.get_timer()
        assert deadline is not None
        session.handle_timer(deadline)
        events = drain(session)
        assert types(events) == [
            "input_audio_buffer.timeout_triggered",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
        ]
        triggered = events[0]
        assert (triggered["audio_start_ms"], triggered["audio_end_ms"]) == (500, 5700)
        assert events[1]["item_id"] == triggered["item_id"]
        part = retrieve(session, triggered["item_id"])["content"][0]
        assert len(base64.b64decode(part["audio"])) == 5200 * 48
        assert session.buffered_ms == 0


class TestRateLimits:
    """rate_limits.updated after each response.done, with the operator's limits."""

    def test_after_each_response(self) -> None:
        limits = Limits(rate_limit_requests=10, rate_limit_tokens=1000)
        session = new_session(limits=limits)
        update(session, {"output_modalities": ["text"]})
        remaining = []
        for now in (T0 + 1, T0 + 2, T0 + 100):
            session.receive_text('{"type":"response.create"}', now)
            (action,) = session.actions_to_take()
            assert isinstance(action, StartResponse)
            session.response_text(action.request.response_id, "x" * 40)
            session.response_done(action.request.response_id)
            events = drain(session)
            assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
            requests, tokens = events[-1]["rate_limits"]
            assert (requests["name"], requests["limit"]) == ("requests", 10)
            assert (tokens["name"], tokens["limit"]) == ("tokens", 1000)
            used = done_of(events)["usage"]["total_tokens"]
            remaining.append((requests["remaining"], tokens["remaining"], used))
            assert 0 < requests["reset_seconds"] <= 60
        (r1, t1, u1), (r2, t2, u2), (r3, t3, u3) = remaining
        assert (r1, r2) == (9, 8)
        assert (t1, t2) == (1000 - u1, 1000 - u1 - u2)
        # A new window (60 s later) starts again.
        assert (r3, t3) == (9, 1000 - u3)


class TestFailedResponses:
    """A failed response says why."""

    def test_error_in_status_details(self) -> None:
        session = new_session()
        rid = start(session)
        error = ResponseStatusError(
            type="server_error",
            code="llm_unreachable",
            message="The language model is unreachable: connection refused",
        )
        session.response_failed(rid, error)
        assert done_of(drain(session))["status_details"] == {
            "type": "failed",
            "error": {
                "type": "server_error",
                "code": "llm_unreachable",
                "message": "The language model is unreachable: connection refused",
            },
        }


class TestTranscriptionReports:
    """logprobs when include asks for them; usage in tokens when counted."""

    LOGPROBS = [LogProb(token="hi", logprob=-0.25, bytes=[104, 105])]

    def _committed(self, session: Session) -> str:
        update(
            session,
            {
                "audio": {
                    "input": {
                        "turn_detection": None,
                        "transcription": {"model": "whisper-1"},
                    }
                }
            },
        )
        pcm = base64.b64encode(audio.tone(200, 24000)).decode()
        send(session, {"type": "input_audio_buffer.append", "audio": pcm})
        (committed, *_) = send(session, {"type": "input_audio_buffer.commit"})
        item_id: str = committed["item_id"]
        return item_id

    def test_logprobs_when_included(self) -> None:
        session = new_session()
        item_id = self._committed(session)
        update(session, {"include": ["item.input_audio_transcription.logprobs"]})
        session.transcription_delta(item_id, "hi", logprobs=self.LOGPROBS)
        session.transcription_completed(
            item_id, "hi", logprobs=self.LOGPROBS, input_tokens=12, output_tokens=2
        )
        delta, completed = drain(session)
        expected = [{"token": "hi", "logprob": -0.25, "bytes": [104, 105]}]
        assert delta["logprobs"] == expected
        assert completed["logprobs"] == expected
        assert completed["usage"] == {
            "type": "tokens",
            "input_tokens": 12,
            "output_tokens": 2,
            "total_tokens": 14,
        }

    def test_token_usage_by_kind(self) -> None:
        """Audio and text tokens, when the engine counts them, detail the input."""
        session = new_session()
        item_id = self._committed(session)
        session.transcription_completed(
            item_id,
            "hi",
            input_tokens=13,
            output_tokens=2,
            audio_tokens=10,
            text_tokens=3,
        )
        (completed,) = drain(session)
        assert completed["usage"] == {
            "type": "tokens",
            "input_tokens": 13,
            "input_token_details": {"text_tokens": 3, "audio_tokens": 10},
            "output_tokens": 2,
            "total_tokens": 15,
        }

    def test_logprobs_null_from_an_engine_without_them(self) -> None:
        session = new_session()
        item_id = self._committed(session)
        update(session, {"include": ["item.input_audio_transcription.logprobs"]})
        session.transcription_completed(item_id, "hi")
        (completed,) = drain(session)
        assert completed["logprobs"] is None
        assert completed["usage"] == {"type": "duration", "seconds": 0.2}

    def test_no_logprobs_unless_asked(self) -> None:
        session = new_session()
        item_id = self._committed(session)
        session.transcription_delta(item_id, "hi", logprobs=self.LOGPROBS)
        session.transcription_completed(item_id, "hi", logprobs=self.LOGPROBS)
        delta, completed = drain(session)
        assert "logprobs" not in delta and "logprobs" not in completed

    def test_transcript_of_an_item_without_audio(self) -> None:
        """A client-created audio item has no measured audio: 0 seconds."""
        session = new_session()
        (added, _) = send(
            session,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_audio", "audio": "AAAA"}],
                },
            },
        )
        session.transcription_completed(added["item"]["id"], "x")
        assert drain(session)[0]["usage"] == {"type": "duration", "seconds": 0.0}


class TestValidation:
    """What the hosted API refuses and the server used to let through."""

    @pytest.mark.parametrize("name", ["get.weather", "", "has space", "x" * 65])
    def test_function_names(self, name: str) -> None:
        session = new_session()
        error = only_error(
            update(session, {"tools": [{"type": "function", "name": name}]})
        )
        assert error["param"] == "session.tools[0].name"
        if len(name) > 64:
            assert error["code"] == "string_above_max_length"
        else:
            assert error == {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Invalid 'session.tools[0].name': string does not match "
                "pattern. Expected a string that matches the pattern "
                "'^[a-zA-Z0-9_-]+$'.",
                "param": "session.tools[0].name",
                "event_id": None,
            }
        error = only_error(
            send(
                session,
                {
                    "type": "response.create",
                    "response": {"tools": [{"type": "function", "name": name}]},
                },
            )
        )
        assert error["param"] == "response.tools[0].name"

    def test_good_function_names(self) -> None:
        session = new_session()
        name = "get_weather-2" + "x" * 51
        events = update(session, {"tools": [{"type": "function", "name": name}]})
        assert types(events) == ["session.updated"]

    def test_forced_tool_choice_must_be_a_tool(self) -> None:
        session = new_session()
        error = only_error(
            update(session, {"tool_choice": {"type": "function", "name": "nope"}})
        )
        assert error == {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Tool choice 'nope' not found in 'tools' parameter.",
            "param": "session.tool_choice",
            "event_id": None,
        }
        tools = [{"type": "function", "name": "lookup"}]
        events = update(
            session,
            {"tools": tools, "tool_choice": {"type": "function", "name": "lookup"}},
        )
        assert types(events) == ["session.updated"]
        error = only_error(
            send(
                session,
                {
                    "type": "response.create",
                    "response": {"tool_choice": {"type": "function", "name": "other"}},
                },
            )
        )
        assert error["param"] == "response.tool_choice"
        # A forced choice of a tool the response itself declares is fine.
        request = request_of(
            session,
            tools=[{"type": "function", "name": "other"}],
            tool_choice={"type": "function", "name": "other"},
        )
        assert request.tool_choice.name == "other"

    def test_output_audio_without_audio_or_text(self) -> None:
        session = new_session()
        item = {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_audio", "audio": None}],
        }
        error = only_error(
            send(session, {"type": "conversation.item.create", "item": item})
        )
        assert error == {
            "type": "invalid_request_error",
            "code": "missing_required_parameter",
            "message": "Missing required parameter: 'item.content[0].text'.",
            "param": "item.content[0].text",
            "event_id": None,
        }
        item["content"] = [{"type": "output_audio", "audio": None, "transcript": "Hi"}]
        (added, _) = send(session, {"type": "conversation.item.create", "item": item})
        assert added["item"]["content"] == [
            {"type": "output_audio", "transcript": "Hi"}
        ]
        item["content"] = [{"type": "output_audio", "audio": "not base64!"}]
        error = only_error(
            send(session, {"type": "conversation.item.create", "item": item})
        )
        assert error["param"] == "item.content[0].audio"


class TestToolChoiceWarnings:
    """A call the response does not allow is dropped, and the log says why."""

    def test_undeclared_and_ruled_out(self, caplog: pytest.LogCaptureFixture) -> None:
        session = new_session()
        update(
            session,
            {
                "tools": [
                    {"type": "function", "name": "a"},
                    {"type": "function", "name": "b"},
                ],
                "tool_choice": {"type": "function", "name": "a"},
            },
        )
        rid = start(session)
        with caplog.at_level(logging.WARNING, logger="openrealtime.session"):
            assert session.response_function_call(rid, "ghost", "{}") is None
            assert session.response_function_call(rid, "b", "{}") is None
        assert "'ghost', which is not a function tool of this response" in caplog.text
        assert "(declared: a, b)" in caplog.text
        assert "'b', which tool_choice rules out" in caplog.text
        assert session.response_function_call(rid, "a", "{}") is not None
