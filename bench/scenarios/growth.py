"""Growth: cached bundle and list reads with 10, 100 and 1,000 items, on one and two replicas.

Items are created through the admin API of replica 0 (so the content service
validates them and every replica's cache is invalidated as in production)
until the database contains the next size. Each size is then measured against
replica 0 alone and against both replicas at once, the connections split
evenly, with one wrk process per replica running concurrently.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bench.loadgen import LoadResult, LoadSpec, run_load
from bench.results import GrowthRow

if TYPE_CHECKING:
    from bench.admin import GatewayClient
    from bench.config import BenchConfig
    from bench.system import GatewayHandle

__all__ = ["ENDPOINTS", "combine", "grow_to", "measure_growth_step", "wait_settled"]

ENDPOINTS = ("/api/v1/content/bundle", "/api/v1/content")
"""The cached public reads whose cost grows with the number of items."""

ITEM_TYPES = ("project", "blog-post", "experience", "skill")
"""Types the generated items are spread over, so the bundle has several groups."""


def _item(number: int) -> dict[str, object]:
    return {
        "type": ITEM_TYPES[number % len(ITEM_TYPES)],
        "slug": f"bench-item-{number:04d}",
        "status": "published",
        "sortOrder": number,
        "data": {
            "title": f"Benchmark item {number}",
            "summary": "An event-driven service with a cache in front and NATS behind. " * 3,
            "tags": ["python", "nats", "litestar"],
            "url": f"https://example.com/items/{number}",
        },
    }


def grow_to(client: GatewayClient, target: int, existing: int) -> int:
    """Create published items until ``target`` exist; return the new count."""
    for number in range(existing, target):
        client.create(_item(number))
    return max(existing, target)


SETTLE_DEADLINE_S = 120.0
"""Maximum wait for the caches to settle after items were created, in seconds."""

SETTLED_ROUNDS = 3
"""Consecutive rounds of cache hits on every endpoint that count as settled."""


def wait_settled(client: GatewayClient, endpoints: tuple[str, ...] = ENDPOINTS) -> float:
    """Wait until every endpoint is a cache hit several rounds in a row; return the seconds waited.

    Creating items queues one event each in the content service's outbox, and
    every event drops the list and bundle entries again. Measuring before the
    relay has drained them would time a cache that is invalidated throughout.
    """
    started = time.monotonic()
    streak = 0
    while streak < SETTLED_ROUNDS:
        if time.monotonic() - started > SETTLE_DEADLINE_S:
            raise TimeoutError(f"the caches did not settle within {SETTLE_DEADLINE_S:.0f} s")
        hits = [client.get(endpoint).headers.get("x-cache", "") == "HIT" for endpoint in endpoints]
        streak = streak + 1 if all(hits) else 0
        time.sleep(0.2)
    return round(time.monotonic() - started, 1)


def combine(results: list[LoadResult]) -> LoadResult:
    """Several concurrent runs as one: summed throughput, the worst latency of any."""
    return LoadResult(
        requests=sum(r.requests for r in results),
        duration_s=max(r.duration_s for r in results),
        rps=round(sum(r.rps for r in results), 1),
        p50_ms=max(r.p50_ms for r in results),
        p90_ms=max(r.p90_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        mean_ms=max(r.mean_ms for r in results),
        errors=sum(r.errors for r in results),
        connections=sum(r.connections for r in results),
    )


def _run_on(urls: list[str], endpoint: str, config: BenchConfig, duration_s: float) -> LoadResult:
    per_replica = max(1, config.connections // len(urls))
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        runs = list(
            pool.map(
                lambda url: run_load(
                    LoadSpec(url + endpoint), duration_s=duration_s, connections=per_replica
                ),
                urls,
            )
        )
    return combine(runs)


def measure_growth_step(
    client: GatewayClient, gateways: list[GatewayHandle], items: int, config: BenchConfig
) -> list[GrowthRow]:
    """Measure every endpoint at this size on one replica, then on all of them."""
    settle_s = wait_settled(client)
    rows = []
    for endpoint in ENDPOINTS:
        response_bytes = len(client.get(endpoint).content)
        for replicas in sorted({1, len(gateways)}):
            used = gateways[:replicas]
            urls = [handle.url for handle in used]
            if config.warmup_s > 0:
                _run_on(urls, endpoint, config, config.warmup_s)
            cpu_before = sum(handle.child.cpu_s() for handle in used)
            load = _run_on(urls, endpoint, config, config.growth_duration_s)
            cpu_s = sum(handle.child.cpu_s() for handle in used) - cpu_before
            rows.append(
                GrowthRow(
                    endpoint=endpoint,
                    items=items,
                    replicas=replicas,
                    response_bytes=response_bytes,
                    load=load,
                    cpu_us=round(cpu_s * 1e6 / load.requests, 1) if load.requests else None,
                    settle_s=settle_s,
                )
            )
    return rows
