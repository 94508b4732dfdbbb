"""The connection's light event flag behaves as asyncio.Event does."""

from __future__ import annotations

import asyncio

import pytest

from openrealtime.server.connection import _NO_QUEUE, _Flag


async def test_flag_wakes_every_waiter_and_forgets_cancelled_ones() -> None:
    flag = _Flag()
    assert not flag.is_set()
    woken: list[int] = []

    async def waiter(i: int) -> None:
        await flag.wait()
        woken.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    await asyncio.sleep(0)
    assert len(flag._waiters or ()) == 2
    flag.set()
    flag.set()  # setting twice wakes nobody twice
    await asyncio.gather(tasks[0], tasks[2])
    assert sorted(woken) == [0, 2] and tasks[1].cancelled()
    assert flag.is_set()
    assert not flag._waiters
    await flag.wait()  # set: returns at once
    flag.clear()
    assert not flag.is_set()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    _Flag(True).set()
    flag.set()
    await late


async def test_flag_waiter_cancelled_after_set_is_harmless() -> None:
    flag = _Flag()
    task = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    flag.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert flag.is_set()


def test_synchronous_transports_share_a_queue_that_refuses_frames() -> None:
    with pytest.raises(AssertionError, match="queues nothing"):
        _NO_QUEUE.append(b"{}")
    assert not _NO_QUEUE
