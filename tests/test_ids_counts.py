"""Hosted-style ids, and the event counts the engine keeps."""

from __future__ import annotations

import re

from openrealtime.counts import EventCounts, client_event_type
from openrealtime.ids import CountingIds, RandomIds, ephemeral_key
from openrealtime.models.client_events import SessionUpdateEvent
from openrealtime.models.server_events import ErrorEvent, SessionUpdatedEvent
from openrealtime.session import Session


ID = re.compile(r"event_[0-9A-Za-z]{21}")


def test_random_ids_are_hosted_style_unique_and_time_ordered() -> None:
    a, b = RandomIds(), RandomIds()
    now = 1_765_000_000.0
    ids = [f.new("event_", now + i / 1000) for i in range(50) for f in (a, b)]
    assert all(ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    # The first 7 characters are the millisecond, shared by every factory.
    times = [i[6:13] for i in ids]
    assert times == sorted(times) and times[0] == times[1] != times[2]
    assert a.new("item_", now)[5:12] == b.new("sess_", now)[5:12] == times[0]
    # Within one millisecond, one factory's ids differ in their counter.
    same = {a.new("event_", now) for _ in range(100)}
    assert len(same) == 100 and len({i[:19] for i in same}) == 1
    assert [CountingIds().new("x_", 0) for _ in range(2)] == ["x_1", "x_1"]
    assert re.fullmatch(r"ek_[0-9a-f]{32}", ephemeral_key())


def test_sessions_count_their_events_by_class() -> None:
    counts = EventCounts()
    session = Session(now=0.0, counts=counts)
    session.receive_text('{"type":"session.update","session":{"type":"realtime"}}', 0)
    session.receive_text('{"type":"nope"}', 0)  # an unknown type: "other"
    session.receive_text('{"type":"session.update","session":{"x":1}}', 0)
    session.receive_binary(0)
    assert counts.received == {SessionUpdateEvent: 1, "other": 2, "session.update": 1}
    assert counts.received_by_type() == {"session.update": 2, "other": 2}
    assert counts.sent[SessionUpdatedEvent] == 1 and counts.sent[ErrorEvent] == 3
    assert counts.sent_by_type() == {
        "session.created": 1,
        "session.updated": 1,
        "error": 3,
    }
    assert sum(counts.errors.values()) == 3
    # A second session adds to the same counts.
    Session(now=0.0, counts=counts)
    assert counts.sent_by_type()["session.created"] == 2


def test_client_event_type_reads_the_head_of_a_frame() -> None:
    assert client_event_type('{"type":"response.create"}') == "response.create"
    assert client_event_type(b'{"type":"response.create"}') == "response.create"
    assert client_event_type('{"event_id":"e", "type" : "session.update"}') == (
        "session.update"
    )
    assert client_event_type(b'{"event_id":"e","type":"x.y"}') == "other"
    assert client_event_type(b'{"type":"x.y"}') == "other"
    assert client_event_type("[]") == "other"
    # Only the head is read: a type past 256 characters is not looked for.
    assert client_event_type('{"a":"' + "x" * 300 + '","type":"session.update"}') == (
        "other"
    )
