"""Metrics counts frames by event type, on the fast path and off it."""

from __future__ import annotations

import time

from openrealtime.server.metrics import Metrics
from openrealtime.session import Session


def test_sent_counts_engine_frames_by_type_and_errors_by_code() -> None:
    session = Session(now=time.time())
    session.receive_text('{"type":"session.update","session":{"type":"realtime"}}', 0)
    session.receive_text('{"type":"nope"}', 0)
    session.receive_text('{"type":"nope"}', 0)
    metrics = Metrics()
    kinds = [metrics.sent(frame) for frame in session.data_to_send()]
    assert kinds == ["session.created", "session.updated", "error", "error"]
    assert metrics.events_out == {
        "session.created": 1,
        "session.updated": 1,
        "error": 2,
    }
    assert metrics.errors == {"invalid_value": 2}
    assert 'openrealtime_events_sent_total{type="error"} 2' in metrics.render()


def test_engine_counts_and_frames_counted_here_add_up() -> None:
    """Client frames are counted by the engine that reads them (by type, or
    "other"); server frames by the engine or, for frames no engine made,
    by :meth:`Metrics.sent`; the two meet in ``events_out``."""
    metrics = Metrics()
    session = Session(now=time.time(), counts=metrics.counts)
    session.receive_text('{"type":"session.update","session":{"type":"realtime"}}', 0)
    session.receive_text(b'{"type":"response.create","response":{"x":1}}', 0)
    session.receive_text('{"event_id":"e","type":"x.y"}', 0)
    assert metrics.sent(b'{"type":"session.updated"}') == "session.updated"
    assert metrics.events_in == {"session.update": 1, "response.create": 1, "other": 1}
    assert metrics.events_out == {
        "session.created": 1,
        "session.updated": 2,
        "error": 2,
    }
