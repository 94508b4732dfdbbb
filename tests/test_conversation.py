"""Conversation items, the input audio buffer and responses, through the engine alone."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from openrealtime import audio
from openrealtime.responders import apply_chunk
from openrealtime.responders.base import Responder
from openrealtime.responders.echo import EchoResponder
from openrealtime.responders.scripted import ScriptedResponder, load_fixture
from openrealtime.session import (
    CancelResponse,
    Limits,
    Session,
    StartResponse,
    Transcribe,
)
from tests.helpers import T0, new_session, only_error, send, types, update


async def run(session: Session, responder: Responder) -> list[dict[str, Any]]:
    """Run every pending response to its end; return all events sent meanwhile."""
    events = [json.loads(d) for d in session.data_to_send()]
    while actions := session.actions_to_take():
        for action in actions:
            if isinstance(action, StartResponse):
                rid = action.request.response_id
                async for chunk in responder.respond(action.request):
                    apply_chunk(session, rid, chunk)
                session.response_done(rid)
        events += [json.loads(d) for d in session.data_to_send()]
    return events


def user_text(text: str, **extra: Any) -> dict[str, Any]:
    """A conversation.item.create of a user text message."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
        **extra,
    }


#: Server VAD that commits each turn and transcribes it, with no response.
TRANSCRIBED_TURNS: dict[str, Any] = {
    "audio": {
        "input": {
            "transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad", "create_response": False},
        }
    }
}


def pcm_b64(ms: int, *, loud: bool, amplitude: float = 0.5) -> str:
    """``ms`` of 24 kHz PCM16: a tone or silence, base64."""
    pcm = audio.tone(ms, 24000, 300.0, amplitude) if loud else audio.silence(ms, 24000)
    return base64.b64encode(pcm).decode()


def append(session: Session, ms: int, *, loud: bool) -> list[dict[str, Any]]:
    """Append ``ms`` of tone or silence; return the server events."""
    return send(
        session,
        {"type": "input_audio_buffer.append", "audio": pcm_b64(ms, loud=loud)},
    )


TEXT_TURN = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
    "rate_limits.updated",
]


def response_done(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The response of the (last) response.done event."""
    done = [e for e in events if e["type"] == "response.done"]
    assert done, types(events)
    response: dict[str, Any] = done[-1]["response"]
    return response


class TestItems:
    """conversation.item.create / delete / retrieve."""

    def test_create_emits_added_then_done(self) -> None:
        """A user message is added, completed, and gets server fields."""
        session = new_session()
        events = send(session, user_text("hello", event_id="c1"))
        assert types(events) == ["conversation.item.added", "conversation.item.done"]
        item = events[0]["item"]
        assert item == {
            "type": "message",
            "id": "item_3",
            "object": "realtime.item",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_text", "text": "hello"}],
        }
        assert events[0]["previous_item_id"] is None

    def test_previous_item_id_places_the_item(self) -> None:
        """previous_item_id inserts after that item; "root" at the start."""
        session = new_session()
        a = send(session, user_text("a"))[0]["item"]["id"]
        b = send(session, user_text("b"))[0]["item"]["id"]
        c = send(session, user_text("c", previous_item_id=a))[0]
        assert c["previous_item_id"] == a
        d = send(session, user_text("d", previous_item_id="root"))[0]
        assert d["previous_item_id"] is None
        assert [i.id for i in session.items] == [d["item"]["id"], a, c["item"]["id"], b]

    def test_unknown_previous_item(self) -> None:
        """An unknown previous_item_id is an error with param."""
        session = new_session()
        error = only_error(send(session, user_text("x", previous_item_id="item_nope")))
        assert error["code"] == "item_not_found"
        assert error["param"] == "previous_item_id"
        assert session.items == []

    def test_duplicate_item_id(self) -> None:
        """A client-chosen id that exists already is refused."""
        session = new_session()
        event = user_text("x")
        event["item"]["id"] = "my_item"
        send(session, event)
        error = only_error(send(session, event))
        assert error["code"] == "item_already_exists"
        assert error["param"] == "item.id"

    @pytest.mark.parametrize(
        ("role", "part", "allowed"),
        [
            ("system", {"type": "input_audio", "audio": ""}, ["input_text"]),
            (
                "assistant",
                {"type": "input_text", "text": "x"},
                ["output_text", "output_audio"],
            ),
            (
                "user",
                {"type": "output_text", "text": "x"},
                ["input_text", "input_audio", "input_image"],
            ),
        ],
    )
    def test_bad_part_for_role(
        self, role: str, part: dict[str, Any], allowed: list[str]
    ) -> None:
        """Each role takes only its own part types."""
        session = new_session()
        event = {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": role, "content": [part]},
        }
        error = only_error(send(session, event))
        assert error["code"] == "invalid_value"
        assert error["param"] == "item.content[0].type"
        assert error["message"].startswith(f"Invalid value: '{part['type']}'.")
        for name in allowed:
            assert f"'{name}'" in error["message"]

    def test_mcp_items_are_refused(self) -> None:
        """MCP items come from MCP servers, which this server does not run."""
        session = new_session()
        event = {
            "type": "conversation.item.create",
            "item": {
                "type": "mcp_approval_response",
                "id": "x",
                "approval_request_id": "y",
                "approve": True,
            },
        }
        assert only_error(send(session, event))["param"] == "item.type"

    def test_delete_and_retrieve(self) -> None:
        """delete removes; retrieve returns the item; unknown ids are errors."""
        session = new_session()
        item_id = send(session, user_text("a"))[0]["item"]["id"]
        (retrieved,) = send(
            session, {"type": "conversation.item.retrieve", "item_id": item_id}
        )
        assert retrieved["type"] == "conversation.item.retrieved"
        assert retrieved["item"]["content"] == [{"type": "input_text", "text": "a"}]
        assert send(
            session, {"type": "conversation.item.delete", "item_id": item_id}
        ) == [
            {
                "type": "conversation.item.deleted",
                "event_id": "event_7",
                "item_id": item_id,
            }
        ]
        for kind in ("delete", "retrieve"):
            error = only_error(
                send(session, {"type": f"conversation.item.{kind}", "item_id": item_id})
            )
            assert error["code"] == "item_not_found"
            assert error["message"] == f"Item with item_id not found: {item_id}"


class TestInputAudioBuffer:
    """input_audio_buffer.append / commit / clear with turn detection off."""

    def _manual(self) -> Session:
        session = new_session()
        update(session, {"audio": {"input": {"turn_detection": None}}})
        return session

    def test_commit_creates_a_user_audio_item(self) -> None:
        """commit -> committed, then the item added and done."""
        session = self._manual()
        assert (
            send(
                session,
                {"type": "input_audio_buffer.append", "audio": pcm_b64(200, loud=True)},
            )
            == []
        )
        events = send(session, {"type": "input_audio_buffer.commit"})
        assert types(events) == [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
        ]
        assert events[0]["previous_item_id"] is None
        assert events[1]["item"]["content"] == [
            {"type": "input_audio", "transcript": None}
        ]
        assert session.buffered_ms == 0

    def test_commit_too_small(self) -> None:
        """Less than 100 ms: the hosted input_audio_buffer_commit_empty error."""
        session = self._manual()
        send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(50, loud=False)},
        )
        error = only_error(send(session, {"type": "input_audio_buffer.commit"}))
        assert error["code"] == "input_audio_buffer_commit_empty"
        assert error["message"] == (
            "Error committing input audio buffer: buffer too small. Expected at least "
            "100ms of audio, but buffer only has 50.00ms of audio."
        )

    def test_clear(self) -> None:
        """clear empties the buffer."""
        session = self._manual()
        send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(300, loud=True)},
        )
        assert types(send(session, {"type": "input_audio_buffer.clear"})) == [
            "input_audio_buffer.cleared"
        ]
        assert session.buffered_ms == 0

    def test_bad_base64_and_odd_length(self) -> None:
        """Audio that is not base64, or not whole samples, is refused."""
        session = self._manual()
        error = only_error(
            send(session, {"type": "input_audio_buffer.append", "audio": "not base64!"})
        )
        assert (error["code"], error["param"]) == ("invalid_value", "audio")
        odd = base64.b64encode(b"\x00\x01\x02").decode()
        error = only_error(
            send(session, {"type": "input_audio_buffer.append", "audio": odd})
        )
        assert "2-byte samples" in error["message"]

    def test_buffer_cap(self) -> None:
        """The per-session cap on buffered bytes gives a clear error."""
        from openrealtime.session import Limits

        session = new_session(limits=Limits(max_buffer_bytes=4800))
        update(session, {"audio": {"input": {"turn_detection": None}}})
        send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(100, loud=False)},
        )
        error = only_error(
            send(
                session,
                {"type": "input_audio_buffer.append", "audio": pcm_b64(20, loud=False)},
            )
        )
        assert error["code"] == "input_audio_buffer_full"

    def test_g711_input_counts_8khz_bytes(self) -> None:
        """With audio/pcmu input, one byte is one 8 kHz sample."""
        session = self._manual()
        update(session, {"audio": {"input": {"format": {"type": "audio/pcmu"}}}})
        send(
            session,
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(b"\xff" * 800).decode(),
            },
        )
        assert session.buffered_ms == 100

    def test_transcription_is_requested_on_commit(self) -> None:
        """With transcription on, a commit asks the driver to transcribe the item."""
        session = self._manual()
        update(session, {"audio": {"input": {"transcription": {"model": "whisper-1"}}}})
        send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(200, loud=True)},
        )
        item_id = send(session, {"type": "input_audio_buffer.commit"})[0]["item_id"]
        (action,) = session.actions_to_take()
        assert isinstance(action, Transcribe)
        assert (action.item_id, action.rate, len(action.pcm16)) == (
            item_id,
            24000,
            9600,
        )
        session.transcription_delta(item_id, "hel")
        session.transcription_completed(item_id, "hello")
        events = [json.loads(d) for d in session.data_to_send()]
        assert types(events) == [
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.completed",
        ]
        assert events[1]["transcript"] == "hello"
        assert events[1]["usage"] == {"type": "duration", "seconds": 0.2}
        assert session.items[0].content[0].transcript == "hello"  # type: ignore[union-attr]
        session.transcription_failed(item_id, "boom")
        (failed,) = [json.loads(d) for d in session.data_to_send()]
        assert failed["error"] == {
            "type": "transcription_error",
            "code": "transcription_failed",
            "message": "boom",
            "param": None,
        }


class TestTurnDetection:
    """Server VAD (the energy detector) on appended audio."""

    def test_speech_started_stopped_commit_and_respond(self) -> None:
        """Speech between silences: started/stopped with padded times, commit, response."""
        session = new_session()
        events = []
        for chunk in [
            pcm_b64(500, loud=False),
            pcm_b64(600, loud=True),
            pcm_b64(500, loud=False),
        ]:
            events += send(
                session, {"type": "input_audio_buffer.append", "audio": chunk}
            )
        assert types(events) == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
        ]
        started, stopped = events[0], events[1]
        # Speech begins at 500 ms; prefix padding is 300 ms.
        assert started["audio_start_ms"] == 200
        # It ends at 1100 ms; silence_duration_ms is 200 ms.
        assert 1280 <= stopped["audio_end_ms"] <= 1320
        assert started["item_id"] == stopped["item_id"] == events[2]["item_id"]
        (action,) = session.actions_to_take()
        assert isinstance(action, StartResponse)

    def test_silence_before_speech_does_not_fill_the_buffer(self) -> None:
        """A microphone that streams silence for longer than the buffer could
        hold: the old silence is dropped quietly (no event), the buffer
        stays between silence_kept_ms and twice that, and the next turn's
        times run on the whole timeline; its commit holds the speech."""
        limits = Limits(silence_kept_ms=1000, max_buffer_bytes=10 * 48_000)
        session = new_session(limits=limits)
        update(session, TRANSCRIBED_TURNS)
        events = []
        for _ in range(30):  # 15 s of silence: 1.5x the buffer's 10 s
            events += append(session, 500, loud=False)
            assert session.buffered_ms <= 2000
        assert events == []
        assert session.buffered_ms >= 1000
        events += append(session, 600, loud=True)
        events += append(session, 500, loud=False)
        started, stopped, committed = events[:3]
        assert started["type"] == "input_audio_buffer.speech_started"
        assert started["audio_start_ms"] == 15_000 - 300  # prefix padding
        assert 15_780 <= stopped["audio_end_ms"] <= 15_820
        assert committed["type"] == "input_audio_buffer.committed"
        (transcribe,) = session.actions_to_take()
        assert isinstance(transcribe, Transcribe)
        # From the padded start to the end: every byte of the turn.
        span = stopped["audio_end_ms"] - started["audio_start_ms"]
        assert len(transcribe.pcm16) == 48 * span

    def test_silence_is_kept_without_turn_detection_or_while_speaking(
        self,
    ) -> None:
        """No turn detection: every byte stays for a manual commit. During
        speech nothing is dropped either; silence_kept_ms None keeps all."""
        limits = Limits(silence_kept_ms=100)
        session = new_session(limits=limits)
        update(session, {"audio": {"input": {"turn_detection": None}}})
        for _ in range(4):
            append(session, 500, loud=False)
        assert session.buffered_ms == 2000
        session = new_session(limits=limits)
        events = append(session, 2000, loud=True)
        assert types(events) == ["input_audio_buffer.speech_started"]
        append(session, 100, loud=True)
        assert session.buffered_ms == 2100
        session = new_session(limits=Limits(silence_kept_ms=None))
        for _ in range(4):
            append(session, 500, loud=False)
        assert session.buffered_ms == 2000

    def test_threshold_changes_detection(self) -> None:
        """A quiet voice (-29 dBFS) is speech at threshold 0.5, not at 0.9."""
        quiet = pcm_b64(600, loud=True, amplitude=0.05)
        session = new_session()
        events = send(session, {"type": "input_audio_buffer.append", "audio": quiet})
        assert types(events) == ["input_audio_buffer.speech_started"]
        session = new_session()
        update(session, {"audio": {"input": {"turn_detection": {"threshold": 0.9}}}})
        events = send(session, {"type": "input_audio_buffer.append", "audio": quiet})
        assert events == []

    def test_create_response_false(self) -> None:
        """create_response false: the turn is committed but no response starts."""
        session = new_session()
        update(
            session,
            {"audio": {"input": {"turn_detection": {"create_response": False}}}},
        )
        events = []
        for chunk in [pcm_b64(400, loud=True), pcm_b64(400, loud=False)]:
            events += send(
                session, {"type": "input_audio_buffer.append", "audio": chunk}
            )
        assert "response.created" not in types(events)
        assert "input_audio_buffer.committed" in types(events)

    def test_barge_in_cancels_the_response(self) -> None:
        """Speech during a response cancels it with reason turn_detected."""
        session = new_session()
        send(session, {"type": "response.create"})
        (start,) = session.actions_to_take()
        assert isinstance(start, StartResponse)
        rid = start.request.response_id
        session.response_text(rid, "Hello there")
        session.response_audio(rid, audio.tone(100, 24000))
        session.data_to_send()
        events = send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(300, loud=True)},
        )
        assert types(events)[0] == "input_audio_buffer.speech_started"
        assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
        done = events[-2]
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"] == {
            "type": "cancelled",
            "reason": "turn_detected",
        }
        assert CancelResponse(rid) in session.actions_to_take()

    def test_semantic_vad_detects_too(self) -> None:
        """semantic_vad uses the same detector with an eagerness window."""
        session = new_session()
        update(
            session,
            {
                "audio": {
                    "input": {
                        "turn_detection": {"type": "semantic_vad", "eagerness": "high"}
                    }
                }
            },
        )
        events = []
        for chunk in [pcm_b64(400, loud=True), pcm_b64(600, loud=False)]:
            events += send(
                session, {"type": "input_audio_buffer.append", "audio": chunk}
            )
        assert "input_audio_buffer.speech_stopped" in types(events)

    def test_idle_timeout(self) -> None:
        """idle_timeout_ms after response.done triggers timeout_triggered and a response."""
        session = new_session()
        update(
            session, {"audio": {"input": {"turn_detection": {"idle_timeout_ms": 5000}}}}
        )
        send(session, {"type": "response.create"})
        (start,) = session.actions_to_take()
        session.response_done(start.request.response_id)  # type: ignore[union-attr]
        session.data_to_send()
        timer = session.get_timer()
        assert timer == pytest.approx(T0 + 1 + 5)
        session.handle_timer(timer)  # type: ignore[arg-type]
        events = [json.loads(d) for d in session.data_to_send()]
        assert types(events) == [
            "input_audio_buffer.timeout_triggered",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
        ]
        # The item the timeout names exists: the committed (empty) audio.
        item_id = events[0]["item_id"]
        assert events[1]["item_id"] == item_id
        assert session.items[-1].id == item_id


class TestResponses:
    """response.create / cancel and the hosted event sequence."""

    async def test_text_turn(self) -> None:
        """A text response: the full hosted sequence, and the text echoed."""
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        send(session, user_text("ping"))
        session.receive_text('{"type":"response.create"}', T0 + 2)
        events = await run(session, EchoResponder())
        assert types(events) == TEXT_TURN
        assert events[4]["delta"] == "ping"
        done = events[-2]["response"]
        assert done["status"] == "completed"
        assert done["output"][0]["content"] == [{"type": "output_text", "text": "ping"}]
        assert done["usage"]["output_tokens"] > 0
        assert done["conversation_id"].startswith("conv_")

    async def test_audio_turn_with_transcript(self) -> None:
        """An audio response: transcript deltas, audio deltas, and their done events."""
        session = new_session()
        send(session, user_text("hello"))
        session.receive_text('{"type":"response.create"}', T0 + 2)
        events = await run(session, EchoResponder())
        assert types(events)[:5] == TEXT_TURN[:4] + [
            "response.output_audio_transcript.delta"
        ]
        assert "response.output_audio.delta" in types(events)
        tail = types(events)[-7:]
        assert tail == [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated",
        ]
        item = response_done(events)["output"][0]
        assert item["content"] == [{"type": "output_audio", "transcript": "hello"}]
        assert session.voice_locked

    async def test_g711_output_is_decoded_back(self) -> None:
        """audio/pcmu output: the deltas decode back to the tone within G.711 error."""
        session = new_session()
        update(session, {"audio": {"output": {"format": {"type": "audio/pcmu"}}}})
        send(session, {"type": "response.create"})
        (start,) = session.actions_to_take()
        assert isinstance(start, StartResponse)
        assert start.request.output_modalities == ["audio"]
        tone = audio.tone(100, 24000, 440.0)
        session.response_audio(start.request.response_id, tone)
        deltas = [json.loads(d) for d in session.data_to_send()]
        data = base64.b64decode(deltas[-1]["delta"])
        assert len(data) == 800  # 100 ms at 8 kHz, one byte a sample
        decoded, rate = audio.to_pcm16(data, "audio/pcmu")
        expected = audio.resample(tone, 24000, 8000)
        assert rate == 8000
        assert abs(audio.rms(decoded) - audio.rms(expected)) < 0.01

    def test_one_response_at_a_time(self) -> None:
        """A second response.create while one is active: the hosted error."""
        session = new_session()
        send(session, {"type": "response.create"})
        rid = session.active_response_id
        error = only_error(send(session, {"type": "response.create", "event_id": "r2"}))
        assert error == {
            "type": "invalid_request_error",
            "code": "conversation_already_has_active_response",
            "message": f"Conversation already has an active response in progress: {rid}. "
            "Wait until the response is finished before creating a new one.",
            "param": None,
            "event_id": "r2",
        }

    def test_cancel_mid_stream(self) -> None:
        """response.cancel ends the response as cancelled, closing the open item."""
        session = new_session()
        send(session, {"type": "response.create"})
        (start,) = session.actions_to_take()
        rid = start.request.response_id  # type: ignore[union-attr]
        session.response_text(rid, "Once upon")
        session.data_to_send()
        events = send(session, {"type": "response.cancel"})
        assert types(events) == [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated",
        ]
        assert events[-2]["response"]["status"] == "cancelled"
        assert events[-2]["response"]["status_details"] == {
            "type": "cancelled",
            "reason": "client_cancelled",
        }
        assert events[3]["item"]["status"] == "incomplete"
        assert session.actions_to_take() == [CancelResponse(rid)]
        # Late chunks from the cancelled responder are dropped.
        session.response_text(rid, " a time")
        assert session.data_to_send() == []

    def test_cancel_without_response(self) -> None:
        """Nothing to cancel: the hosted response_cancel_not_active error."""
        session = new_session()
        error = only_error(send(session, {"type": "response.cancel"}))
        assert (error["code"], error["message"]) == (
            "response_cancel_not_active",
            "Cancellation failed: no active response found",
        )

    def test_per_response_overrides(self) -> None:
        """response.create overrides instructions, tools, modalities, tokens, metadata."""
        session = new_session()
        send(
            session,
            {
                "type": "response.create",
                "response": {
                    "instructions": "Only this time.",
                    "output_modalities": ["text"],
                    "max_output_tokens": 50,
                    "metadata": {"topic": "x"},
                    "tool_choice": "none",
                    "tools": [{"type": "function", "name": "f"}],
                },
            },
        )
        (start,) = session.actions_to_take()
        request = start.request  # type: ignore[union-attr]
        assert request.instructions == "Only this time."
        assert request.output_modalities == ["text"]
        assert request.max_output_tokens == 50
        assert request.metadata == {"topic": "x"}
        assert request.tool_choice == "none"
        assert [t.name for t in request.tools] == ["f"]  # type: ignore[union-attr]

    async def test_out_of_band_response(self) -> None:
        """conversation "none": no conversation items, and input items are used."""
        session = new_session()
        update(session, {"output_modalities": ["text"]})
        send(session, user_text("in the conversation"))
        session.receive_text(
            json.dumps(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "input": [user_text("out of band")["item"]],
                        "metadata": {"purpose": "classify"},
                    },
                }
            ),
            T0 + 2,
        )
        events = await run(session, EchoResponder())
        assert "conversation.item.added" not in types(events)
        assert response_done(events)["conversation_id"] is None
        assert response_done(events)["output"][0]["content"][0]["text"] == "out of band"
        assert len(session.items) == 1


class TestFunctionCalling:
    """A function call round trip with the scripted responder."""

    FIXTURE = {
        "rules": [
            {
                "match": {"text": "weather"},
                "reply": {
                    "function_call": {
                        "name": "get_weather",
                        "arguments": {"city": "Paris"},
                    }
                },
            },
            {
                "match": {"item_type": "function_call_output"},
                "reply": {"text": "It is sunny."},
            },
        ],
        "default": {"text": "No idea."},
    }

    async def test_round_trip(self) -> None:
        """Call, client output, second response reading the output."""
        responder = ScriptedResponder(load_fixture(self.FIXTURE))
        session = new_session()
        update(
            session,
            {
                "output_modalities": ["text"],
                "tools": [
                    {
                        "type": "function",
                        "name": "get_weather",
                        "parameters": {"type": "object"},
                    }
                ],
            },
        )
        send(session, user_text("What's the weather?"))
        session.receive_text('{"type":"response.create"}', T0 + 2)
        events = await run(session, responder)
        assert types(events) == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated",
        ]
        done_args = events[4]
        assert (done_args["name"], done_args["arguments"]) == (
            "get_weather",
            '{"city": "Paris"}',
        )
        call_id = done_args["call_id"]
        send(
            session,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": '{"sky":"clear"}',
                },
            },
        )
        session.receive_text('{"type":"response.create"}', T0 + 3)
        events = await run(session, responder)
        assert [
            e.get("delta") for e in events if e["type"] == "response.output_text.delta"
        ] == ["It is sunny."]

    async def test_tool_choice_none_blocks_calls(self) -> None:
        """tool_choice "none": a responder's call is dropped, whatever it wants."""
        responder = ScriptedResponder(load_fixture(self.FIXTURE))
        session = new_session()
        update(
            session,
            {
                "output_modalities": ["text"],
                "tool_choice": "none",
                "tools": [{"type": "function", "name": "get_weather"}],
            },
        )
        send(session, user_text("weather?"))
        session.receive_text('{"type":"response.create"}', T0 + 2)
        events = await run(session, responder)
        assert types(events) == [
            "response.created",
            "response.done",
            "rate_limits.updated",
        ]

    async def test_unknown_tool_is_not_called(self) -> None:
        """A call of a tool that is not configured is dropped."""
        responder = ScriptedResponder(load_fixture(self.FIXTURE))
        session = new_session()
        send(session, user_text("weather?"))
        session.receive_text('{"type":"response.create"}', T0 + 2)
        events = await run(session, responder)
        assert "response.function_call_arguments.done" not in types(events)


class TestTruncate:
    """conversation.item.truncate after assistant audio."""

    def _spoken(self) -> tuple[Session, str]:
        session = new_session()
        send(session, {"type": "response.create"})
        (start,) = session.actions_to_take()
        rid = start.request.response_id  # type: ignore[union-attr]
        session.response_text(rid, "A long ")
        session.response_audio(rid, audio.tone(500, 24000))
        session.response_text(rid, "story")
        session.response_audio(rid, audio.tone(500, 24000))
        session.response_done(rid)
        events = [json.loads(d) for d in session.data_to_send()]
        return session, response_done(events)["output"][0]["id"]

    def test_truncate_within_the_audio(self) -> None:
        """Truncation is acknowledged and keeps only the transcript heard."""
        session, item_id = self._spoken()
        events = send(
            session,
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 400,
            },
        )
        assert events == [
            {
                "type": "conversation.item.truncated",
                "event_id": events[0]["event_id"],
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 400,
            }
        ]
        (retrieved,) = send(
            session, {"type": "conversation.item.retrieve", "item_id": item_id}
        )
        (part,) = retrieved["item"]["content"]
        assert part["transcript"] == "A long "
        # The audio heard: 400 ms of 24 kHz PCM16.
        assert len(base64.b64decode(part["audio"])) == 400 * 48

    def test_truncate_beyond_the_audio(self) -> None:
        """audio_end_ms past the audio is refused with param audio_end_ms."""
        session, item_id = self._spoken()
        error = only_error(
            send(
                session,
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": 1500,
                },
            )
        )
        assert error["param"] is None
        assert error["message"] == (
            "Audio content of 1000ms is already shorter than 1500ms"
        )

    def test_truncate_bad_targets(self) -> None:
        """Unknown items, user items and non-audio parts are refused."""
        session, item_id = self._spoken()
        user_id = send(session, user_text("x"))[0]["item"]["id"]
        cases = [
            ({"item_id": "nope", "content_index": 0}, "item_id"),
            ({"item_id": user_id, "content_index": 0}, "item_id"),
            ({"item_id": item_id, "content_index": 3}, "content_index"),
        ]
        for fields, param in cases:
            error = only_error(
                send(
                    session,
                    {"type": "conversation.item.truncate", "audio_end_ms": 0, **fields},
                )
            )
            assert error["param"] == param


class TestScriptedFixtures:
    """The scripted responder's fixture format."""

    def test_bad_fixture_is_reported(self) -> None:
        """A typo in a fixture fails at load, naming the path."""
        with pytest.raises(ValueError, match=r"invalid fixture: .*rules\[0\]"):
            load_fixture({"rules": [{"match": {"txt": "x"}, "reply": {}}]})

    def test_yaml_file(self, tmp_path: Any) -> None:
        """Fixtures load from YAML files."""
        path = tmp_path / "f.yaml"
        path.write_text(
            "rules:\n  - match: {regex: '^hi'}\n    reply: {text: Hello!}\n"
        )
        fixture = load_fixture(path)
        assert fixture.rules[0].reply.text == "Hello!"


class TestSpeechInProgress:
    """What a driver may transcribe early: the audio of the turn VAD hears now."""

    def test_speech_audio_is_what_speech_stopped_commits(self) -> None:
        session = new_session()
        update(session, TRANSCRIBED_TURNS)
        assert session.speech_item_id is None
        assert session.speech_audio() == (b"", 24000)
        send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(500, loud=False)},
        )
        events = send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(600, loud=True)},
        )
        (started,) = [
            e for e in events if e["type"] == "input_audio_buffer.speech_started"
        ]
        assert session.speech_item_id == started["item_id"]
        pcm, rate = session.speech_audio()
        # From audio_start_ms (200) to the end of the buffer (1100 ms).
        assert rate == 24000 and len(pcm) == 900 * 48
        tail, _ = session.speech_audio(last_ms=100)
        assert tail == pcm[-100 * 48 :]
        assert session.speech_audio(last_ms=5000)[0] == pcm  # never before the start
        send(
            session,
            {"type": "input_audio_buffer.append", "audio": pcm_b64(500, loud=False)},
        )
        (action,) = session.actions_to_take()
        assert isinstance(action, Transcribe)
        # The commit is the early audio plus the silence that ended the turn.
        assert action.pcm16[: len(pcm)] == pcm
        assert audio.rms(action.pcm16[len(pcm) :]) == 0.0
        assert session.speech_item_id is None
