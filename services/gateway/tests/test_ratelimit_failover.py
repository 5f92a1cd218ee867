"""Redis failing under the limiter: memory takes over, nothing leaks, Redis is used again later.

Each test owns its Redis server, so it can stop, freeze and restart it.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis_asyncio
from portfolio_gateway.ratelimit import BucketPolicy, RateLimiter
from portfolio_shared.testing.servers import ManagedServer, start_redis
from prometheus_client import REGISTRY

CHAT = BucketPolicy("chat", capacity=5, refill_rate=0.333)

RECOVERY_DEADLINE_S = 15.0
"""Maximum wait for the limiter to notice that Redis is back, in seconds."""


@pytest.fixture
def own_redis() -> Iterator[ManagedServer]:
    server = start_redis(prefer_env=False)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)
    server.stop()


@pytest.fixture
async def limiter(own_redis: ManagedServer) -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter([CHAT], redis_url=own_redis.url, redis_key_prefix="failover:")
    yield limiter
    await limiter.close()


def fallback_switches() -> float:
    return (
        REGISTRY.get_sample_value("redis_fallback_switches_total", {"component": "ratelimit"})
        or 0.0
    )


async def wait_until_up(limiter: RateLimiter) -> None:
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while not limiter.link.up:
        if time.monotonic() > deadline:
            raise AssertionError("the limiter did not return to Redis")
        await asyncio.sleep(0.05)


async def stored_keys(server: ManagedServer) -> list[bytes]:
    client = redis_asyncio.from_url(server.url)
    try:
        return [key async for key in client.scan_iter(match="failover:ratelimit:*")]
    finally:
        await client.aclose()


def client_id() -> str:
    return uuid.uuid4().hex[:16]


async def test_with_redis_up_buckets_live_in_redis(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    client = client_id()
    await limiter.check("chat", client)
    assert await stored_keys(own_redis) == [f"failover:ratelimit:chat:{client}".encode()]


async def test_check_while_redis_is_stopped_raises_nothing(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    await limiter.check("chat", client_id())
    own_redis.stop_process_only()
    decision = await limiter.check("chat", client_id())
    assert decision.allowed


async def test_concurrent_checks_redis_stopped_no_error(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    client = client_id()
    await limiter.check("chat", client_id())
    own_redis.stop_process_only()
    decisions = await asyncio.gather(*(limiter.check("chat", client) for _ in range(20)))
    assert len(decisions) == 20


async def test_memory_still_limits_while_redis_is_stopped(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    client = client_id()
    await limiter.check("chat", client_id())
    own_redis.stop_process_only()
    decisions = [await limiter.check("chat", client) for _ in range(20)]
    assert sum(decision.allowed for decision in decisions) == 5


async def test_switch_to_memory_is_counted_once(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    await limiter.check("chat", client_id())
    before = fallback_switches()
    own_redis.stop_process_only()
    await asyncio.gather(*(limiter.check("chat", client_id()) for _ in range(20)))
    assert fallback_switches() == before + 1


async def test_readiness_is_degraded_while_redis_is_stopped(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    await limiter.check("chat", client_id())
    own_redis.stop_process_only()
    await limiter.check("chat", client_id())
    result = await limiter.check_result()
    assert (result.status, result.critical, result.fallback) == ("error", False, "memory")


async def test_frozen_redis_falls_back_to_memory(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    assert own_redis.process is not None
    await limiter.check("chat", client_id())
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        decision = await limiter.check("chat", client_id())
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    assert decision.allowed


async def test_buckets_return_to_redis(limiter: RateLimiter, own_redis: ManagedServer) -> None:
    await limiter.check("chat", client_id())
    own_redis.stop_process_only()
    await limiter.check("chat", client_id())
    own_redis.restart()
    await wait_until_up(limiter)

    client = client_id()
    await limiter.check("chat", client)

    assert await stored_keys(own_redis) == [f"failover:ratelimit:chat:{client}".encode()]


async def test_readiness_ok_after_redis_returns(
    limiter: RateLimiter, own_redis: ManagedServer
) -> None:
    await limiter.check("chat", client_id())
    own_redis.stop_process_only()
    await limiter.check("chat", client_id())
    own_redis.restart()
    await wait_until_up(limiter)
    result = await limiter.check_result()
    assert result.status == "ok"
