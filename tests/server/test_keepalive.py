"""The picows driver's keepalive schedule: one loop timer for every session.

Each session used to hold a loop timer for its next ping (~0.6 KiB of an idle
session). :class:`~openrealtime.server.picows_driver.Keepalive` keeps the
sessions in slots of a tick instead; these tests hold it to what the timers
did: each session pinged once when due (never before, at most a tick after),
none after it ended, and one session's failure no one else's.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging

import pytest
from websockets.asyncio.client import connect

from openrealtime.server import Settings
from openrealtime.server.picows_driver import Keepalive, _Session
from tests.server.conftest import running_server
from tests.server.test_transport import UPDATE, wait_for


#: Loop timers may run up to a millisecond early (uvloop rounds to ms).
EARLY = 0.002


class Pinged:
    """Stands in for a session: records when the schedule pings it."""

    peer = "127.0.0.1:1"

    def __init__(self, keepalive: Keepalive, log: list[tuple[str, float]], name: str):
        self.keepalive = keepalive
        self.log = log
        self.name = name
        self.fail = False
        self.again: float | None = None

    def _ping(self) -> None:
        self.log.append((self.name, asyncio.get_running_loop().time()))
        if self.again is not None:
            again, self.again = self.again, None
            self.keepalive.add(self, again)  # type: ignore[arg-type]
        if self.fail:
            raise RuntimeError("boom")


def sessions(
    keepalive: Keepalive, log: list[tuple[str, float]], *names: str
) -> list[Pinged]:
    return [Pinged(keepalive, log, name) for name in names]


async def test_each_session_is_pinged_once_when_due_in_the_order_added() -> None:
    keepalive = Keepalive(0.2)
    assert keepalive.tick == pytest.approx(0.01)
    log: list[tuple[str, float]] = []
    a, b, c = sessions(keepalive, log, "a", "b", "c")
    loop = asyncio.get_running_loop()
    start = loop.time()
    due = {"a": start + 0.05, "b": start + 0.05, "c": start + 0.12}
    for session, delay in ((a, 0.05), (b, 0.05), (c, 0.12)):
        keepalive.add(session, delay)  # type: ignore[arg-type]
    assert len(keepalive) == 3
    await asyncio.sleep(0.3)
    assert [name for name, _ in log] == ["a", "b", "c"]
    for name, at in log:
        assert due[name] - EARLY <= at <= due[name] + keepalive.tick + 0.05, name
    assert len(keepalive) == 0


async def test_an_earlier_session_rearms_the_one_timer() -> None:
    """A session due before the armed slot is not kept waiting for it."""
    keepalive = Keepalive(20.0)  # tick 1 s
    log: list[tuple[str, float]] = []
    late, early = sessions(keepalive, log, "late", "early")
    keepalive.add(late, 10.0)  # type: ignore[arg-type]
    keepalive.add(early, 0.0)  # type: ignore[arg-type]
    await asyncio.sleep(1.2)
    assert [name for name, _ in log] == ["early"]
    assert len(keepalive) == 1


async def test_a_session_that_ended_is_not_pinged() -> None:
    keepalive = Keepalive(0.2)
    log: list[tuple[str, float]] = []
    gone, kept = sessions(keepalive, log, "gone", "kept")
    slot = keepalive.add(gone, 0.03)  # type: ignore[arg-type]
    keepalive.add(kept, 0.03)  # type: ignore[arg-type]
    keepalive.discard(gone, slot)  # type: ignore[arg-type]
    keepalive.discard(gone, slot)  # type: ignore[arg-type] # twice: harmless
    await asyncio.sleep(0.15)
    assert [name for name, _ in log] == ["kept"]
    # Its slot emptied, the timer armed for it finds nothing and stops.
    lone = Keepalive(0.2)
    (only,) = sessions(lone, log, "only")
    lone.discard(only, lone.add(only, 0.02))  # type: ignore[arg-type]
    await asyncio.sleep(0.08)
    assert [name for name, _ in log] == ["kept"] and len(lone) == 0


async def test_one_failing_ping_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keepalive = Keepalive(0.2)
    log: list[tuple[str, float]] = []
    bad, good = sessions(keepalive, log, "bad", "good")
    bad.fail = True
    keepalive.add(bad, 0.02)  # type: ignore[arg-type]
    keepalive.add(good, 0.02)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, "openrealtime.server"):
        await asyncio.sleep(0.1)
    assert [name for name, _ in log] == ["bad", "good"]
    assert "keepalive ping failed (127.0.0.1:1)" in caplog.text


async def test_a_session_due_again_at_once_waits_for_the_next_round() -> None:
    """A ping that schedules the next at once (no pong timeout) is not run
    again inside the same round: the schedule cannot spin."""
    keepalive = Keepalive(0.2)
    log: list[tuple[str, float]] = []
    (eager,) = sessions(keepalive, log, "eager")
    eager.again = 0.0
    keepalive.add(eager, 0.02)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert [name for name, _ in log] == ["eager", "eager"]
    assert log[1][1] > log[0][1]


async def test_served_sessions_share_one_schedule_and_leave_it() -> None:
    """picows: every open session waits in the driver's one schedule (or for
    its pong), pings keep working, and a closed session leaves no entry."""
    with running_server(Settings(ping_interval=0.2), "picows", ping_timeout=5) as live:
        url = live.ws_url(model="gpt-realtime")
        clients = [await connect(url).__aenter__() for _ in range(3)]
        try:
            for ws in clients:
                await ws.recv()  # session.created
            await asyncio.sleep(0.5)  # two rounds of pings, answered
            for ws in clients:
                await ws.send(UPDATE)
                assert json.loads(await ws.recv())["type"] == "session.updated"
            # type(), not isinstance(): a dead weakref.proxy raises on the latter.
            live_ones = [
                o
                for o in gc.get_objects()
                if type(o) is _Session
                and o._ws is not None
                and not o._ws.is_disconnected
                and o._driver.ping_interval
                == 0.2  # this server's (earlier ones linger)
            ]
            assert len(live_ones) == 3
            (keepalive,) = {
                id(s._driver.keepalive): s._driver.keepalive for s in live_ones
            }.values()
            assert keepalive is not None
            for session in live_ones:
                assert session._ping_sent_at > 0  # pinged, through the schedule
                assert (
                    session._ping_slot is not None or session._ping_payload is not None
                )
        finally:
            for ws in clients:
                await ws.close()
        await wait_for(lambda: len(keepalive) == 0, "the schedule to empty")
