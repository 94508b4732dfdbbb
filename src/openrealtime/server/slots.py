"""Many deadlines that need no precision, on one loop timer.

A loop timer (``loop.call_later``) costs ~0.55 KiB while it waits: its
handle, uvloop's timer object and libuv's, and a copy of the context. An
idle session used to hold two of them, for its next keepalive ping and for
the engine's deadline (the session's expiry, an hour off), out of ~11.8
KiB in all (``bench/bench_memory.py``). Neither needs to fire on the
millisecond, so both wait here instead.

:class:`Slots` keeps its entries in slots of ``tick`` seconds on the loop's
clock. Only the earliest slot has a loop timer; when it fires, every entry
of every slot that is due gets :meth:`Due.on_due`, in the order the entries
were added. So an entry is never called before its time, and at most one
tick (plus the loop's own lateness) after it. An entry is a dict item: a
few dozen bytes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from typing import Protocol


__all__ = ["Due", "Slots", "far_deadlines"]

logger = logging.getLogger("openrealtime.server")


class Due(Protocol):
    """What waits in :class:`Slots`: hashable, and told when its time comes."""

    def on_due(self) -> None: ...  # pragma: no cover - a protocol


class Slots:
    """Deadlines in slots of ``tick`` seconds, on one timer of the running loop.

    One instance serves one event loop (the loop that runs :meth:`add`).
    """

    __slots__ = ("tick", "_slots", "_timer", "_armed")

    def __init__(self, tick: float) -> None:
        if not tick > 0:
            raise ValueError(f"tick must be positive, not {tick!r}")
        self.tick = tick
        #: Slot number (the deadline on the loop's clock, in ticks, rounded
        #: up) -> its entries, in the order they were added.
        self._slots: dict[int, dict[Due, None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed: int | None = None

    def add(self, entry: Due, delay: float) -> int:
        """Call ``entry.on_due()`` in ``delay`` seconds, or up to a tick later.

        Returns the entry's slot, for :meth:`discard`. An entry waits in one
        slot at a time: discard it before adding it again.
        """
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + delay) / self.tick)
        self._slots.setdefault(slot, {})[entry] = None
        if self._armed is None or slot < self._armed:
            self._arm(loop, slot)
        return slot

    def discard(self, entry: Due, slot: int) -> None:
        """Take ``entry`` out of ``slot`` (nothing if it is not there). A timer
        armed for a slot left empty fires anyway and finds nothing to do."""
        entries = self._slots.get(slot)
        if entries is not None:
            entries.pop(entry, None)
            if not entries:
                del self._slots[slot]

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._slots.values())

    def _arm(self, loop: asyncio.AbstractEventLoop, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed = slot
        self._timer = loop.call_at(slot * self.tick, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._armed is not None
        # A loop timer may run a little early; its slot is due all the same.
        last = max(self._armed, math.floor(loop.time() / self.tick))
        self._timer = self._armed = None
        # Entries added by on_due() go to later slots, or wait for the next
        # round: the due slots are listed before any is run.
        for slot in sorted(slot for slot in self._slots if slot <= last):
            for entry in self._slots.pop(slot):
                try:
                    entry.on_due()
                except Exception:  # one entry's failure must not stop the rest
                    logger.exception("a deadline's callback failed (%r)", entry)
        if self._slots:
            self._arm(loop, min(self._slots))


#: Each loop's schedule for far deadlines (see :func:`far_deadlines`).
_far: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Slots] = (
    weakref.WeakKeyDictionary()
)

#: The tick of :func:`far_deadlines`.
FAR_TICK = 1.0


def far_deadlines(loop: asyncio.AbstractEventLoop) -> Slots:
    """``loop``'s shared schedule for deadlines many seconds off, in 1 s slots
    (a connection waits there until its deadline is near, then takes a loop
    timer of its own for the last stretch)."""
    slots = _far.get(loop)
    if slots is None:
        slots = _far[loop] = Slots(FAR_TICK)
    return slots
