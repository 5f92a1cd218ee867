"""The Redis bucket script against a real Redis: atomicity, keys, expiry, refill by server time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as redis_asyncio
from portfolio_gateway.ratelimit.bucket import BucketPolicy, decide
from portfolio_gateway.ratelimit.redis_backend import RedisBackend

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from portfolio_shared.testing.servers import ManagedServer

CHAT = BucketPolicy("chat", capacity=5, refill_rate=0.333)


@pytest.fixture
async def client(redis_server: ManagedServer) -> AsyncIterator[redis_asyncio.Redis]:
    connection = redis_asyncio.from_url(redis_server.url)
    yield connection
    await connection.aclose()


async def rewind(client: redis_asyncio.Redis, key: str, seconds: int) -> None:
    """Move the bucket's last update into the past, as if ``seconds`` had gone by."""
    updated_us = int(await client.hget(key, "updated_us") or 0)
    await client.hset(key, "updated_us", str(updated_us - seconds * 1_000_000))


async def test_20_concurrent_checks_let_exactly_5_through(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    backend = RedisBackend(redis_prefix)
    results = await asyncio.gather(*(backend.take(client, CHAT, "c1") for _ in range(20)))
    assert sum(allowed for allowed, _ in results) == 5


async def test_two_connections_20_checks_5_through(
    redis_server: ManagedServer, redis_prefix: str
) -> None:
    first = redis_asyncio.from_url(redis_server.url)
    second = redis_asyncio.from_url(redis_server.url)
    backends = [RedisBackend(redis_prefix), RedisBackend(redis_prefix)]
    try:
        results = await asyncio.gather(
            *(
                backends[number % 2].take((first, second)[number % 2], CHAT, "c1")
                for number in range(20)
            )
        )
    finally:
        await first.aclose()
        await second.aclose()
    assert sum(allowed for allowed, _ in results) == 5


async def test_bucket_key_follows_the_runbook_pattern(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    await RedisBackend(redis_prefix).take(client, CHAT, "abcdef0123456789")
    assert await client.exists(f"{redis_prefix}ratelimit:chat:abcdef0123456789") == 1


async def test_bucket_expires_once_it_would_be_full(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    backend = RedisBackend(redis_prefix)
    await backend.take(client, CHAT, "c1")
    ttl_ms = await client.pttl(backend.key(CHAT, "c1"))
    assert 0 < ttl_ms <= CHAT.idle_ttl_s * 1000


async def test_rejected_check_spends_no_token(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    backend = RedisBackend(redis_prefix)
    key = backend.key(CHAT, "c1")
    await client.hset(key, mapping={"tokens": "0.5", "updated_us": await server_time_us(client)})

    allowed, tokens = await backend.take(client, CHAT, "c1")

    assert not allowed
    assert tokens == pytest.approx(0.5, abs=0.01)


async def test_rejected_check_writes_nothing(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    backend = RedisBackend(redis_prefix)
    key = backend.key(CHAT, "c1")
    await client.hset(key, mapping={"tokens": "0.5", "updated_us": await server_time_us(client)})
    stored = await client.hgetall(key)

    await backend.take(client, CHAT, "c1")

    assert await client.hgetall(key) == stored


async def test_looking_creates_no_bucket(client: redis_asyncio.Redis, redis_prefix: str) -> None:
    backend = RedisBackend(redis_prefix)
    await backend.take(client, CHAT, "c1", consume=False)
    assert await client.exists(backend.key(CHAT, "c1")) == 0


async def test_bucket_never_goes_negative(client: redis_asyncio.Redis, redis_prefix: str) -> None:
    backend = RedisBackend(redis_prefix)
    for _ in range(10):
        _, tokens = await backend.take(client, CHAT, "c1")
    assert tokens >= 0.0


async def test_retry_after_retry_after_seconds_succeeds(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    backend = RedisBackend(redis_prefix)
    for _ in range(5):
        await backend.take(client, CHAT, "c1")
    allowed, tokens = await backend.take(client, CHAT, "c1")
    retry_after = decide(CHAT, allowed=allowed, tokens=tokens).retry_after_s

    await rewind(client, backend.key(CHAT, "c1"), retry_after)
    allowed_later, _ = await backend.take(client, CHAT, "c1")

    assert allowed_later


async def test_refill_is_capped_at_capacity(client: redis_asyncio.Redis, redis_prefix: str) -> None:
    backend = RedisBackend(redis_prefix)
    await backend.take(client, CHAT, "c1")
    await rewind(client, backend.key(CHAT, "c1"), 3600)
    _, tokens = await backend.take(client, CHAT, "c1")
    assert tokens == pytest.approx(CHAT.capacity - 1, abs=1e-9)


async def test_looking_without_consuming_keeps_the_tokens(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    backend = RedisBackend(redis_prefix)
    await backend.take(client, CHAT, "c1", consume=False)
    _, tokens = await backend.take(client, CHAT, "c1")
    assert tokens == pytest.approx(4.0, abs=0.01)


async def test_stored_tokens_are_exactly_the_returned_tokens(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    backend = RedisBackend(redis_prefix)
    policy = BucketPolicy("thirds", capacity=3, refill_rate=1 / 3)
    await backend.take(client, policy, "c1")
    await rewind(client, backend.key(policy, "c1"), 1)

    _, tokens = await backend.take(client, policy, "c1")

    assert float(await client.hget(backend.key(policy, "c1"), "tokens") or -1) == tokens


async def server_time_us(client: redis_asyncio.Redis) -> int:
    seconds, microseconds = await client.time()
    return int(seconds) * 1_000_000 + int(microseconds)
