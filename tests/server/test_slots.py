"""One loop timer for many deadlines: the keepalive pings and far deadlines.

Each idle session used to hold two loop timers (~0.55 KiB each): its next
keepalive ping, and the engine's deadline (its expiry, an hour off).
:class:`~openrealtime.server.slots.Slots` keeps such entries in slots of a
tick instead. These tests hold it to what the timers did: each entry called
once when due (never before, at most a tick after), none after it left, one
entry's failure no one else's; then the two users of it, served sessions'
pings and a connection's far deadline, which still fires on time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging

import pytest
from websockets.asyncio.client import connect

from openrealtime.server import Settings, connection as connection_module
from openrealtime.server.picows_driver import _Session
from openrealtime.server.slots import Slots, far_deadlines
from tests.server.conftest import running_server
from tests.server.test_connection import START, EchoText, make
from tests.server.test_transport import UPDATE, wait_for


#: Loop timers may run up to a millisecond early (uvloop rounds to ms).
EARLY = 0.002


class Pinged:
    """Stands in for a session: records when the schedule calls it."""

    def __repr__(self) -> str:
        return f"<pinged {self.name}>"

    def __init__(self, keepalive: Slots, log: list[tuple[str, float]], name: str):
        self.keepalive = keepalive
        self.log = log
        self.name = name
        self.fail = False
        self.again: float | None = None

    def on_due(self) -> None:
        self.log.append((self.name, asyncio.get_running_loop().time()))
        if self.again is not None:
            again, self.again = self.again, None
            self.keepalive.add(self, again)  # type: ignore[arg-type]
        if self.fail:
            raise RuntimeError("boom")


def sessions(
    keepalive: Slots, log: list[tuple[str, float]], *names: str
) -> list[Pinged]:
    return [Pinged(keepalive, log, name) for name in names]


async def test_each_session_is_pinged_once_when_due_in_the_order_added() -> None:
    keepalive = Slots(0.01)
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
    keepalive = Slots(1.0)
    log: list[tuple[str, float]] = []
    late, early = sessions(keepalive, log, "late", "early")
    keepalive.add(late, 10.0)  # type: ignore[arg-type]
    keepalive.add(early, 0.0)  # type: ignore[arg-type]
    await asyncio.sleep(1.2)
    assert [name for name, _ in log] == ["early"]
    assert len(keepalive) == 1


async def test_a_session_that_ended_is_not_pinged() -> None:
    keepalive = Slots(0.01)
    log: list[tuple[str, float]] = []
    gone, kept = sessions(keepalive, log, "gone", "kept")
    slot = keepalive.add(gone, 0.03)  # type: ignore[arg-type]
    keepalive.add(kept, 0.03)  # type: ignore[arg-type]
    keepalive.discard(gone, slot)  # type: ignore[arg-type]
    keepalive.discard(gone, slot)  # type: ignore[arg-type] # twice: harmless
    await asyncio.sleep(0.15)
    assert [name for name, _ in log] == ["kept"]
    # Its slot emptied, the timer armed for it finds nothing and stops.
    lone = Slots(0.01)
    (only,) = sessions(lone, log, "only")
    lone.discard(only, lone.add(only, 0.02))  # type: ignore[arg-type]
    await asyncio.sleep(0.08)
    assert [name for name, _ in log] == ["kept"] and len(lone) == 0


async def test_one_failing_ping_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keepalive = Slots(0.01)
    log: list[tuple[str, float]] = []
    bad, good = sessions(keepalive, log, "bad", "good")
    bad.fail = True
    keepalive.add(bad, 0.02)  # type: ignore[arg-type]
    keepalive.add(good, 0.02)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, "openrealtime.server"):
        await asyncio.sleep(0.1)
    assert [name for name, _ in log] == ["bad", "good"]
    assert "a deadline's callback failed (<pinged bad>)" in caplog.text


async def test_a_session_due_again_at_once_waits_for_the_next_round() -> None:
    """An entry that adds itself again at once (a ping with no pong timeout)
    is not run again inside the same round: the schedule cannot spin."""
    keepalive = Slots(0.01)
    log: list[tuple[str, float]] = []
    (eager,) = sessions(keepalive, log, "eager")
    eager.again = 0.0
    keepalive.add(eager, 0.02)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert [name for name, _ in log] == ["eager", "eager"]
    assert log[1][1] > log[0][1]


def served_sessions(ping_interval: float) -> list[_Session]:
    """The open picows sessions of the running server with this ping interval
    (sessions of earlier tests' servers linger in memory)."""
    # type(), not isinstance(): a dead weakref.proxy raises on the latter.
    return [
        o
        for o in gc.get_objects()
        if type(o) is _Session
        and o._ws is not None
        and not o._ws.is_disconnected
        and o._driver.ping_interval == ping_interval
    ]


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
            live_ones = served_sessions(0.2)
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


def test_a_tick_must_be_positive() -> None:
    with pytest.raises(ValueError, match="tick must be positive"):
        Slots(0)


async def test_served_sessions_ping_in_slots_of_a_twentieth_of_the_interval() -> None:
    with running_server(Settings(ping_interval=10.0), "picows") as live:
        async with connect(live.ws_url(model="gpt-realtime")) as ws:
            await ws.recv()
            (session,) = served_sessions(10.0)
            assert session._driver.keepalive is not None
            assert session._driver.keepalive.tick == pytest.approx(0.5)
            assert repr(session).startswith("<picows session 127.0.0.1:")


async def test_a_far_deadline_waits_on_the_shared_schedule_then_fires_on_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An idle session's expiry (an hour off) holds no loop timer of its own;
    once near, it takes one, and the session closes 1001 when it is due."""
    monkeypatch.setattr(connection_module, "FAR_S", 1.0)
    loop = asyncio.get_running_loop()
    clock = [START + 3600 - 2.0]  # the expiry is 2 s off: past FAR_S
    connection, transport = make(EchoText(), clock=lambda: clock[0])
    connection.start()
    assert connection._timer is None and connection._far_slot is not None
    assert len(far_deadlines(loop)) == 1
    clock[0] = START + 3600  # due once the schedule hands it a timer
    await asyncio.wait_for(connection.wait_closed(), 10)
    assert transport.closed == (
        1001,
        "Your session hit the maximum duration of 60 minutes.",
    )
    await connection.aclose()
    assert len(far_deadlines(loop)) == 0 and connection._far_slot is None


async def test_a_connection_that_ends_leaves_the_shared_schedule() -> None:
    loop = asyncio.get_running_loop()
    connection, _ = make(EchoText())  # expiry an hour off
    connection.start()
    assert connection._far_slot is not None and len(far_deadlines(loop)) == 1
    connection.disconnected(1006)
    await connection.aclose()
    assert connection._far_slot is None and len(far_deadlines(loop)) == 0
