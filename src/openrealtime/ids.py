"""Id factories for events, sessions, items and responses.

The hosted API's ids are a prefix and 21 base62 characters whose start is
time-ordered (``event_``, ``sess_``) [WIRE 28-36]; ephemeral keys are ``ek_`` +
32 hex characters. The engine never reads the clock, so ids take ``now`` from
their caller, and tests inject :class:`CountingIds` for exact assertions.
"""

from __future__ import annotations

import itertools
import os
from typing import Protocol


__all__ = ["CountingIds", "IdFactory", "RandomIds", "ephemeral_key"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


#: The last millisecond and its 7 time characters, shared by every factory
#: (a server's sessions make ids within the same few milliseconds); one
#: tuple, so that a thread never sees one's time with the other's text.
_last: tuple[int, str] = (-1, "")


def _time_part(ms: int) -> str:
    global _last
    last = _last
    if last[0] != ms:
        last = _last = (ms, _base62(ms, 7))
    return last[1]


class IdFactory(Protocol):
    """Makes ids: ``new("event_", now)`` -> ``"event_..."``."""

    def new(self, prefix: str, now: float) -> str:
        """Return a fresh id with this prefix (``now`` in seconds)."""
        ...


class RandomIds:
    """Hosted-style ids: 7 time-ordered characters, then 14 unique ones.

    The time part is computed once per millisecond for all factories; the
    rest is a random per-factory stem and a hex counter (hex digits are base62
    digits), so an id costs a string format, not a call to the random
    generator.
    """

    __slots__ = ("_counter", "_ms", "_prefix_time", "_stem")

    def __init__(self) -> None:
        self._stem = _base62(int.from_bytes(os.urandom(8)), 8)
        self._counter = itertools.count(int.from_bytes(os.urandom(3)))
        self._ms = -1
        self._prefix_time = ""

    def new(self, prefix: str, now: float) -> str:
        """Return ``prefix`` + 21 base62 characters."""
        ms = int(now * 1000)
        if ms != self._ms:
            self._ms = ms
            self._prefix_time = _time_part(ms) + self._stem
        # Six hex digits: the counter's low 24 bits under a seventh that
        # hex() writes and the slice drops (cheaper than a format spec).
        tail = hex(next(self._counter) & 0xFFFFFF | 0x1000000)[3:]
        return f"{prefix}{self._prefix_time}{tail}"


class CountingIds:
    """Deterministic ids for tests: ``event_1``, ``item_2``... (one counter)."""

    __slots__ = ("_counter",)

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new(self, prefix: str, now: float) -> str:
        """Return ``prefix`` + the next number."""
        return f"{prefix}{next(self._counter)}"


def ephemeral_key() -> str:
    """A new ephemeral client secret: ``ek_`` + 32 hex characters."""
    return "ek_" + os.urandom(16).hex()
