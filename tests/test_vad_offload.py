"""Turn detection offloaded by the driver (``vad_offload=True``), and the
cap on output audio per response."""

from __future__ import annotations

import base64
import json
import pickle
from typing import Any

import pytest

from openrealtime import audio
from openrealtime.ids import CountingIds
from openrealtime.session import (
    CancelResponse,
    DetectSpeech,
    Limits,
    Session,
    StartResponse,
)
from openrealtime.turns import DetectorOp, DetectorSettings, SpeechDetector, TurnEvent
from tests.helpers import T0, send, types, update


def make(offload: bool, limits: Limits | None = None) -> Session:
    session = Session(now=T0, ids=CountingIds(), vad_offload=offload, limits=limits)
    session.data_to_send()
    return session


def append(session: Session, pcm: bytes) -> list[dict[str, Any]]:
    return send(
        session,
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()},
    )


def speech(ms: int, rate: int = 24000) -> bytes:
    return audio.tone(ms, rate, 300.0, 0.5)


class Driver:
    """What a server does with the ops: applies them elsewhere, maybe later."""

    def __init__(self, session: Session, *, piece: int | None = None) -> None:
        self.session = session
        self.detector = SpeechDetector(session.scorer_factory)
        self.piece = piece
        self.pending: list[DetectSpeech] = []

    def take(self) -> None:
        for action in self.session.actions_to_take():
            if isinstance(action, DetectSpeech):
                self.pending.append(action)

    def run(self) -> list[dict[str, Any]]:
        """Apply every pending op, report its events; return what was sent."""
        self.take()
        while self.pending:
            action = self.pending.pop(0)
            op = action.op
            events: list[TurnEvent] = []
            if op.kind == "feed" and self.piece:
                for i in range(0, len(op.pcm16), self.piece):
                    piece = DetectorOp("feed", pcm16=op.pcm16[i : i + self.piece])
                    events += self.detector.apply(piece)
            else:
                events = self.detector.apply(op)
            self.session.speech_detected(action.generation, events)
            self.take()
        return [json.loads(d) for d in self.session.data_to_send()]


def script(session: Session, step: Any) -> list[list[str]]:
    """A conversation of appends, updates, commits and clears; events per step."""
    out = []
    vad = {"turn_detection": {"type": "server_vad", "create_response": False}}
    steps: list[Any] = [
        ("update", {"audio": {"input": vad}}),
        ("append", audio.silence(300, 24000) + speech(600)),
        ("append", audio.silence(900, 24000)),
        ("append", speech(400)),
        ("commit", None),
        ("append", speech(300) + audio.silence(50, 24000)),
        (
            "update",
            {"audio": {"input": {"turn_detection": {"silence_duration_ms": 200}}}},
        ),
        ("append", audio.silence(400, 24000)),
        ("append", speech(300)),
        ("clear", None),
        (
            "update",
            {"audio": {"input": {"format": {"type": "audio/pcmu"}}}},
        ),
        ("append", audio.from_pcm16(speech(500, 8000), 8000, "audio/pcmu")),
        ("append", audio.from_pcm16(audio.silence(900, 8000), 8000, "audio/pcmu")),
        ("update", {"audio": {"input": {"turn_detection": None}}}),
        ("append", audio.from_pcm16(speech(500, 8000), 8000, "audio/pcmu")),
        ("update", {"audio": {"input": vad}}),
        ("append", audio.from_pcm16(speech(500, 8000), 8000, "audio/pcmu")),
        ("append", audio.from_pcm16(audio.silence(900, 8000), 8000, "audio/pcmu")),
    ]
    for kind, arg in steps:
        if kind == "update":
            events = update(session, arg)
        elif kind == "append":
            events = append(session, arg)
        else:
            events = send(session, {"type": f"input_audio_buffer.{kind}"})
        out.append(types(events) + types(step()))
    return out


@pytest.mark.parametrize("piece", [None, 4000, 1234])
def test_offloaded_detection_matches_inline(piece: int | None) -> None:
    """Ops applied by the driver (even cut in pieces) give the inline events,
    with the same timeline."""
    inline = make(False)
    expected = script(inline, lambda: [])
    offload = make(True)
    driver = Driver(offload, piece=piece)
    got = script(offload, lambda: driver.run())
    assert got == expected
    assert sum(t.count("input_audio_buffer.speech_started") for t in got) >= 3
    assert inline.items[-1].id == offload.items[-1].id


def test_inline_session_emits_no_detection_actions() -> None:
    session = make(False)
    update(session, {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}})
    append(session, speech(300))
    assert not any(isinstance(a, DetectSpeech) for a in session.actions_to_take())


def test_events_of_an_older_generation_are_dropped() -> None:
    """Audio cleared before its detection came back makes no turn."""
    session = make(True)
    driver = Driver(session)
    update(session, {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}})
    append(session, speech(600))
    driver.take()
    assert [a.op.kind for a in driver.pending] == ["start", "feed"]
    assert types(send(session, {"type": "input_audio_buffer.clear"})) == [
        "input_audio_buffer.cleared"
    ]
    assert driver.run() == []  # the speech_started of cleared audio is stale
    append(session, speech(300))
    assert types(driver.run()) == ["input_audio_buffer.speech_started"]


def test_events_after_detection_was_turned_off_are_dropped() -> None:
    session = make(True)
    driver = Driver(session)
    update(session, {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}})
    append(session, speech(600))
    driver.take()
    update(session, {"audio": {"input": {"turn_detection": None}}})
    append(session, speech(100))  # reconfigures: detection is off
    generation = driver.pending[-1].generation
    session.speech_detected(generation, [TurnEvent("started", 0)])
    assert session.data_to_send() == []


def test_events_after_close_are_dropped() -> None:
    session = make(True)
    driver = Driver(session)
    update(session, {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}})
    append(session, speech(600))
    driver.take()
    send(session, {"type": "session.close"})
    session.actions_to_take()
    for action in driver.pending:
        session.speech_detected(action.generation, driver.detector.apply(action.op))
    assert session.data_to_send() == []


def test_an_op_before_start_is_a_driver_bug() -> None:
    detector = SpeechDetector(lambda rate: pytest.fail("no scorer"))  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="before 'start'"):
        detector.apply(DetectorOp("feed", pcm16=b"\x00\x00"))


# --- Output audio per response -------------------------------------------------


def respond_audio(session: Session) -> str:
    send(
        session,
        {"type": "response.create", "response": {"output_modalities": ["audio"]}},
    )
    (action,) = session.actions_to_take()
    assert isinstance(action, StartResponse)
    return action.request.response_id


def test_output_audio_is_capped_per_response() -> None:
    """Past the cap the audio is cut, the responder cancelled, the response
    ends incomplete (max_output_tokens)."""
    session = make(False, Limits(max_output_audio_ms=500))
    rid = respond_audio(session)
    session.response_audio(rid, audio.silence(300, 24000))
    session.response_audio(rid, audio.silence(300, 24000))
    assert session.actions_to_take() == [CancelResponse(rid)]
    events = [json.loads(d) for d in session.data_to_send()]
    deltas = [
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] == "response.output_audio.delta"
    ]
    assert [len(d) for d in deltas] == [14400, 9600]  # 300 ms, then 200 ms
    (done,) = [e for e in events if e["type"] == "response.done"]
    assert done["response"]["status"] == "incomplete"
    assert done["response"]["status_details"]["reason"] == "max_output_tokens"
    session.response_audio(rid, audio.silence(300, 24000))  # too late: ignored
    assert session.data_to_send() == []


def test_output_audio_exactly_at_the_cap_then_more() -> None:
    session = make(False, Limits(max_output_audio_ms=200))
    rid = respond_audio(session)
    session.response_audio(rid, audio.silence(200, 24000))
    assert session.actions_to_take() == []
    session.response_audio(rid, audio.silence(20, 24000))
    assert session.actions_to_take() == [CancelResponse(rid)]
    events = [json.loads(d) for d in session.data_to_send()]
    assert types(events).count("response.output_audio.delta") == 1
    (done,) = [e for e in events if e["type"] == "response.done"]
    assert done["response"]["status"] == "incomplete"


def test_output_audio_uncapped() -> None:
    session = make(False, Limits(max_output_audio_ms=None))
    rid = respond_audio(session)
    session.response_audio(rid, audio.silence(1000, 24000))
    session.response_done(rid)
    events = [json.loads(d) for d in session.data_to_send()]
    (done,) = [e for e in events if e["type"] == "response.done"]
    assert done["response"]["status"] == "completed"


@pytest.mark.parametrize("scorer_rate", [24000, 16000])
def test_a_skip_advances_the_timeline_without_scoring(scorer_rate: int) -> None:
    """What a driver that cannot keep up sends instead of a feed."""
    from openrealtime.turns import EnergyScorer

    detector = SpeechDetector(lambda rate: EnergyScorer(scorer_rate))
    settings = DetectorSettings(24000, 0.5, 0, 200)
    assert detector.apply(DetectorOp("start", settings=settings)) == []
    skipped = speech(1000)  # not scored: no speech seen in it
    assert detector.apply(DetectorOp("skip", skip_bytes=len(skipped))) == []
    events = detector.apply(DetectorOp("feed", pcm16=speech(400)))
    assert [e.kind for e in events] == ["started"]
    assert 1000 <= events[0].ms <= 1040


@pytest.mark.parametrize(
    "value",
    [
        TurnEvent("started", 1234),
        DetectorSettings(24000, 0.5, 300, 500, position_ms=12.5),
        DetectorOp("feed", pcm16=b"\x01\x02"),
        DetectorOp("start", settings=DetectorSettings(16000, 0.6, 0, 200)),
        DetectorOp("skip", skip_bytes=960),
    ],
)
def test_ops_settings_and_events_cross_to_a_worker_unchanged(value: object) -> None:
    """What voice workers send and get (pickled by their fields) comes back
    equal, every field with it, at every pickle protocol."""
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(value, protocol))
        assert copy == value
        assert type(copy) is type(value)
