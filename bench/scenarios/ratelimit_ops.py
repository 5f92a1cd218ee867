"""The rate-limit check against a plain Redis GET, measured in-process.

Both loops run the same number of operations with the same concurrency over
the same number of distinct clients, through clients with the same settings
(the limiter's own ``RedisLink``), against one Redis server of this run. A
third loop measures the limiter's memory backend, the fallback when Redis is
down. The loops run in turn for several rounds and each keeps its best, as
the HTTP paths do. Each loop is bounded by its operation count and by ``DEADLINE_S``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING

from portfolio_gateway.ratelimit import RateLimiter
from portfolio_gateway.ratelimit.bucket import BucketPolicy

from bench.results import OpsResult, percentile

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["measure_rate_limit_ops"]

CLIENTS = 1000
"""Distinct client hashes (and Redis keys) the operations rotate over."""

DEADLINE_S = 30.0
"""Maximum time one loop may run, whatever its operation count, in seconds."""

POLICY = BucketPolicy("chat", 1_000_000_000, 1_000_000_000.0)
"""A policy whose limit the loop never reaches, so every check does the full work."""


async def _timed_loop(
    key: str,
    title: str,
    operation: Callable[[int], Awaitable[object]],
    *,
    operations: int,
    concurrency: int,
) -> OpsResult:
    latencies: list[float] = []
    errors = 0
    next_index = 0
    deadline = time.perf_counter() + DEADLINE_S

    async def worker() -> None:
        nonlocal next_index, errors
        while next_index < operations and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                await operation(index % CLIENTS)
            except Exception:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return OpsResult(
        key=key,
        title=title,
        operations=len(latencies) + errors,
        concurrency=concurrency,
        duration_s=round(elapsed, 3),
        ops_per_s=round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(percentile(latencies, 50), 3),
        p99_ms=round(percentile(latencies, 99), 3),
        errors=errors,
    )


async def _measure(
    redis_url: str, operations: int, concurrency: int, rounds: int
) -> list[OpsResult]:
    prefix = f"bench-{secrets.token_hex(4)}:"
    hashes = [f"{index:016x}" for index in range(CLIENTS)]
    limiter = RateLimiter([POLICY], redis_url=redis_url, redis_key_prefix=prefix)
    memory_limiter = RateLimiter([POLICY], redis_url=None)
    client = limiter.link.client
    assert client is not None, "the limiter has no Redis client"
    get_keys = [f"{prefix}bench:get:{client_hash}" for client_hash in hashes]
    try:
        await client.mset(dict.fromkeys(get_keys, "1"))

        async def check(index: int) -> object:
            return await limiter.check(POLICY.name, hashes[index])

        async def plain_get(index: int) -> object:
            return await client.get(get_keys[index])

        async def memory_check(index: int) -> object:
            return await memory_limiter.check(POLICY.name, hashes[index])

        # Warm both paths: script loaded, connections open.
        for index in range(concurrency):
            await check(index)
            await plain_get(index)
        loops = (
            ("redis_get", "plain Redis `GET`", plain_get),
            ("ratelimit_check", "rate-limit check, Redis (Lua script)", check),
            ("ratelimit_memory", "rate-limit check, memory fallback", memory_check),
        )
        best: dict[str, OpsResult] = {}
        for _ in range(rounds):
            for key, title, operation in loops:
                result = await _timed_loop(
                    key, title, operation, operations=operations, concurrency=concurrency
                )
                if key not in best or result.ops_per_s > best[key].ops_per_s:
                    best[key] = result
        results = [best[key] for key, _, _ in loops]
        if limiter.link.client is None:
            raise RuntimeError("Redis failed during the rate-limit loop; the numbers are memory's")
        return results
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await limiter.close()
        await memory_limiter.close()


def measure_rate_limit_ops(
    redis_url: str, *, operations: int, concurrency: int, rounds: int = 1
) -> list[OpsResult]:
    """Run the three loops ``rounds`` times in turn and return each one's best round."""
    return asyncio.run(_measure(redis_url, operations, concurrency, rounds))
