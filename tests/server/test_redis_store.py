"""The Redis secret store against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from openrealtime.config import default_config
from openrealtime.server.redis_store import RedisSecretStore, SecretStoreUnavailable
from openrealtime.server.secrets import SecretRecord
from tests.redis_server import free_port, redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisSecretStore]:
    s = RedisSecretStore(redis_url, prefix="test:ek:")
    yield s
    await s.aclose()


def record() -> SecretRecord:
    config = default_config("realtime", id="sess_1", model="gpt-realtime", created_at=0)
    return SecretRecord(session=config, created_at=0, expires_at=600)


async def test_put_get_delete(store: RedisSecretStore) -> None:
    """A key round-trips its record, and is gone once deleted."""
    await store.put("ek_a", record(), 60)
    assert await store.get("ek_a") == record()
    await store.delete("ek_a")
    assert await store.get("ek_a") is None
    assert await store.get("ek_unknown") is None


async def test_redis_expires_the_key(store: RedisSecretStore) -> None:
    """The TTL is set on the Redis key itself, so every node sees it expire."""
    await store.put("ek_ttl", record(), 1)
    ttl = await store._redis.ttl("test:ek:ek_ttl")
    assert 0 < ttl <= 1
    for _ in range(60):  # bounded: at most 3 s
        if await store.get("ek_ttl") is None:
            break
        await asyncio.sleep(0.05)
    assert await store.get("ek_ttl") is None


async def test_shared_between_stores(redis_url: str) -> None:
    """A key put through one store (one process) is read through another."""
    a, b = RedisSecretStore(redis_url), RedisSecretStore(redis_url)
    try:
        await a.put("ek_shared", record(), 60)
        assert await b.get("ek_shared") == record()
    finally:
        await a.aclose()
        await b.aclose()


async def test_unavailable() -> None:
    """No Redis: a clear SecretStoreUnavailable, and ping says False."""
    store = RedisSecretStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    try:
        assert await store.ping() is False
        with pytest.raises(SecretStoreUnavailable):
            await store.put("ek_x", record(), 60)
        with pytest.raises(SecretStoreUnavailable):
            await store.get("ek_x")
        with pytest.raises(SecretStoreUnavailable):
            await store.delete("ek_x")
    finally:
        await store.aclose()
