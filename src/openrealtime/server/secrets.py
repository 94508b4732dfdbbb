"""Ephemeral client secrets (``ek_...``): where minted sessions are kept.

``POST /v1/realtime/client_secrets`` mints a key and the session config it
opens; a socket presenting that key starts from that config. A
:class:`SecretStore` keeps them until they expire. Records are msgspec
Structs encoded to JSON bytes (:func:`encode_record`), so any byte store can
hold them: :class:`MemorySecretStore` here (one process), others (Redis)
behind the same protocol.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol

import msgspec

from openrealtime.models.session import SessionConfig


__all__ = [
    "MemorySecretStore",
    "SecretRecord",
    "SecretStore",
    "SecretStoreUnavailable",
    "decode_record",
    "encode_record",
]


class SecretRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What an ephemeral key stands for.

    Attributes:
        session: the effective session config minted with the key.
        created_at: when the key was minted (seconds since the epoch).
        expires_at: when the key stops opening sessions ("The session
            itself may continue after that time once started").
    """

    session: SessionConfig
    created_at: int
    expires_at: int


_record_decoder = msgspec.json.Decoder(SecretRecord)
_record_encoder = msgspec.json.Encoder()


def encode_record(record: SecretRecord) -> bytes:
    """Encode a record to JSON bytes."""
    return _record_encoder.encode(record)


def decode_record(data: bytes) -> SecretRecord:
    """Decode a record written by :func:`encode_record`."""
    return _record_decoder.decode(data)


class SecretStoreUnavailable(Exception):
    """A shared key store (Redis) cannot be reached: minting answers 503."""


class SecretStore(Protocol):
    """Keeps ephemeral keys until they expire."""

    async def put(self, key: str, record: SecretRecord, ttl_seconds: int) -> None:
        """Keep ``record`` under ``key`` for ``ttl_seconds``."""
        ...

    async def get(self, key: str) -> SecretRecord | None:
        """The record of a live key; ``None`` if unknown or expired."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error if unknown)."""
        ...


class MemorySecretStore:
    """A :class:`SecretStore` in this process's memory.

    Expired keys are refused and purged on access, and swept (oldest first,
    from a heap) on every :meth:`put`, so the store holds only the live keys
    plus those that expired since the last mint. Keys minted here are unknown to other
    processes (``--workers`` > 1 needs a shared store).

    Args:
        clock: seconds since the epoch (tests inject a fake).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._data: dict[str, tuple[float, bytes]] = {}
        self._deadlines: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._data)

    async def put(self, key: str, record: SecretRecord, ttl_seconds: int) -> None:
        """Keep ``record`` under ``key`` for ``ttl_seconds``."""
        now = self._clock()
        self._sweep(now)
        deadline = now + ttl_seconds
        self._data[key] = (deadline, encode_record(record))
        heapq.heappush(self._deadlines, (deadline, key))

    async def get(self, key: str) -> SecretRecord | None:
        """The record of a live key; ``None`` if unknown or expired."""
        entry = self._data.get(key)
        if entry is None:
            return None
        deadline, data = entry
        if self._clock() >= deadline:
            del self._data[key]
            return None
        return decode_record(data)

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error if unknown)."""
        self._data.pop(key, None)  # its heap entry goes on the next sweep

    def _sweep(self, now: float) -> None:
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is not None and entry[0] == deadline:
                del self._data[key]
