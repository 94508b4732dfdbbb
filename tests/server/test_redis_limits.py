"""Redis: /healthz tells when it is down; the pool is bounded (issue 14)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as redis

from openrealtime.server import Settings
from openrealtime.server.redis_store import RedisSecretStore
from openrealtime.server.secrets import SecretRecord
from tests.redis_server import free_port, redis_server
from tests.server.conftest import running_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_healthz_reports_redis_down(driver: str, redis_url: str) -> None:
    """With a Redis store: 200 while it answers, 503 with the reason when not."""
    up = Settings(redis_url=redis_url)
    with running_server(up, driver) as live:
        async with httpx.AsyncClient(base_url=live.http) as client:
            ok = await client.get("/healthz")
    assert ok.status_code == 200 and ok.json() == {"status": "ok"}
    down = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with running_server(down, driver) as live:
        async with httpx.AsyncClient(base_url=live.http) as client:
            bad = await client.get("/healthz", timeout=10)
    assert bad.status_code == 503
    assert bad.json() == {
        "status": "unavailable",
        "reason": "the Redis key store is unreachable",
    }


async def test_pool_is_bounded() -> None:
    """200 concurrent lookups through a store of 3 connections: all answer,
    and Redis (one of its own) never sees more than 3 clients from it."""
    with redis_server() as url:
        await _bounded(url)


async def _bounded(redis_url: str) -> None:
    store = RedisSecretStore(redis_url, max_connections=3, prefix="bounded:")
    observer = redis.Redis.from_url(redis_url)
    try:
        from openrealtime.config import default_config

        record = SecretRecord(
            session=default_config(
                "realtime", id="sess_1", model="gpt-realtime", created_at=0
            ),
            created_at=0,
            expires_at=10**10,
        )
        await store.put("ek_x", record, 60)
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                clients = await observer.client_list()
                peak = max(peak, len(clients) - 1)  # less the observer
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        results = await asyncio.gather(*(store.get("ek_x") for _ in range(200)))
        watcher.cancel()
        assert all(r is not None and r.session.id == "sess_1" for r in results)
        assert 1 <= peak <= 3
    finally:
        await store.aclose()
        await observer.aclose()
