"""Ephemeral keys in Redis, shared by every process and machine of a service.

Each key is one Redis string ``<prefix><ek_...>`` holding the JSON record,
written with ``SET ... EX ttl``: Redis itself expires it, so a key minted on
one node stops working on every node at the same moment, and nothing needs
sweeping. Keys are reusable until they expire, like the in-memory store (the
hosted API documents a lifetime, not a single use).

When Redis cannot be reached, :class:`SecretStoreUnavailable` is raised: the
REST endpoint answers 503, ``/healthz`` answers 503 with the reason, and
sessions already open are not affected (they never touch the store again).

The connection pool is bounded (``max_connections``, default
:data:`MAX_CONNECTIONS` per process): a burst of requests waits up to
``timeout`` seconds for a free connection instead of opening one each.

Durability: keys live only in Redis. A Redis restart loses every unexpired
``ek_`` key unless Redis persistence (RDB snapshots or AOF) is on; clients
holding such a key must mint a new one.
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


__all__ = ["MAX_CONNECTIONS", "RedisSecretStore", "SecretStoreUnavailable"]

#: Connections one process keeps to Redis at most.
MAX_CONNECTIONS = 16

logger = logging.getLogger("openrealtime.server")


class RedisSecretStore:
    """A :class:`~openrealtime.server.secrets.SecretStore` in Redis.

    Args:
        url: ``redis://host:port/db`` (or ``rediss://`` for TLS).
        prefix: namespace for the keys.
        timeout: seconds to wait for Redis (or a free pooled connection)
            before giving up.
        max_connections: connections kept to Redis at most.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "openrealtime:ek:",
        timeout: float = 2.0,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.url = url
        self.prefix = prefix
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._redis = redis.Redis(connection_pool=pool)
        self._timeout = timeout

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
        """Whether Redis answers (for health checks), on a connection of its
        own: it proves a new connection works, and leaves nothing open."""
        client = redis.Redis.from_url(
            self.url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            single_connection_client=True,
        )
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose(close_connection_pool=True)
