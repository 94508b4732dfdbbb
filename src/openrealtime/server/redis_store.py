"""Ephemeral keys in Redis, shared by every process and machine of a service.

Each key is one Redis string ``<prefix><ek_...>`` holding the JSON record,
written with ``SET ... EX ttl``: Redis itself expires it, so a key minted on
one node stops working on every node at the same moment, and nothing needs
sweeping. Keys are reusable until they expire, like the in-memory store (the
hosted API documents a lifetime, not a single use).

When Redis cannot be reached, :class:`SecretStoreUnavailable` is raised: the
REST endpoint answers 503 and sessions already open are not affected (they
never touch the store again).
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from openrealtime.server.secrets import (
    SecretRecord,
    SecretStoreUnavailable,
    decode_record,
    encode_record,
)


__all__ = ["RedisSecretStore", "SecretStoreUnavailable"]

logger = logging.getLogger("openrealtime.server")


class RedisSecretStore:
    """A :class:`~openrealtime.server.secrets.SecretStore` in Redis.

    Args:
        url: ``redis://host:port/db`` (or ``rediss://`` for TLS).
        prefix: namespace for the keys.
        timeout: seconds to wait for Redis before giving up.
    """

    def __init__(
        self, url: str, *, prefix: str = "openrealtime:ek:", timeout: float = 2.0
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    async def put(self, key: str, record: SecretRecord, ttl_seconds: int) -> None:
        """Keep ``record`` under ``key``; Redis expires it after ``ttl_seconds``."""
        try:
            await self._redis.set(
                self.prefix + key, encode_record(record), ex=ttl_seconds
            )
        except (RedisError, OSError) as exc:
            logger.error("redis unavailable for put: %s", type(exc).__name__)
            raise SecretStoreUnavailable(str(exc)) from exc

    async def get(self, key: str) -> SecretRecord | None:
        """The record of a live key; ``None`` if unknown or expired."""
        try:
            data = await self._redis.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            logger.error("redis unavailable for get: %s", type(exc).__name__)
            raise SecretStoreUnavailable(str(exc)) from exc
        if data is None:
            return None
        return decode_record(data if isinstance(data, bytes) else data.encode())

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error if unknown)."""
        try:
            await self._redis.delete(self.prefix + key)
        except (RedisError, OSError) as exc:
            raise SecretStoreUnavailable(str(exc)) from exc

    async def ping(self) -> bool:
        """Whether Redis answers (for health checks)."""
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
