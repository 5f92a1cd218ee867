"""The response cache on its own, over memory and over a real Redis: storing,
the generation check that prevents stale fills, exact invalidation, and the
fallback to memory when Redis stops."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import msgspec
import pytest
import redis.asyncio as redis_asyncio
from portfolio_gateway.cache.keys import affected_keys, bundle_key, item_key, list_key
from portfolio_gateway.cache.store import CachedResponse, ResponseCache
from portfolio_shared.contract import ChangeKind, ContentChanged
from portfolio_shared.redis_link import RedisLink
from portfolio_shared.testing.servers import start_redis

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from portfolio_shared.testing.servers import ManagedServer


def cacheable(key: str | None) -> str:
    assert key is not None
    return key


ATLAS = cacheable(item_key("project", "atlas"))
BOREALIS = cacheable(item_key("project", "borealis"))
ABOUT = cacheable(item_key("about", "me"))


def entry(text: str = "v1") -> CachedResponse:
    return CachedResponse(
        body=f'{{"data":"{text}"}}'.encode(), etag=f'"{text}"', stored_at=time.time()
    )


def change(content_type: str = "project", slug: str = "atlas", **extra: object) -> ContentChanged:
    return ContentChanged(
        event_id="evt_1",
        content_id="content_1",
        content_type=content_type,
        slug=slug,
        version=2,
        change=ChangeKind.UPDATED,
        status="published",
        occurred_at="2026-01-01T00:00:00.000Z",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["memory", "redis"])
async def cache(
    request: pytest.FixtureRequest, redis_server: ManagedServer, redis_prefix: str
) -> AsyncIterator[ResponseCache]:
    url = redis_server.url if request.param == "redis" else None
    link = RedisLink(url, component="cache", key_prefix=redis_prefix)
    store = ResponseCache(link, ttl_s=60, stale_ttl_s=600, max_entries=100)
    yield store
    await store.close()


async def fill(cache: ResponseCache, key: str, value: CachedResponse) -> bool:
    return await cache.store(key, value, await cache.generation())


# Keys


def test_item_change_affects_its_item_its_lists_and_the_bundle() -> None:
    keys = affected_keys(change())

    assert ATLAS in keys
    assert list_key({"type": "project"}) in keys
    assert list_key({}) in keys
    assert bundle_key() in keys


def test_item_change_leaves_other_items_and_types_alone() -> None:
    keys = affected_keys(change())

    assert BOREALIS not in keys
    assert list_key({"type": "about"}) not in keys


def test_slug_change_affects_the_previous_slug_too() -> None:
    assert item_key("project", "old-name") in affected_keys(change(previous_slug="old-name"))


@pytest.mark.parametrize(
    "query", [{"type": "Not Valid"}, {"status": "deleted"}, {"type": "x" * 101}]
)
def test_queries_the_service_would_refuse_are_not_cacheable(query: dict[str, str]) -> None:
    assert list_key(query) is None


# Storing and invalidating (both backends)


async def test_stored_entry_is_read_back(cache: ResponseCache) -> None:
    await fill(cache, ATLAS, entry("v1"))

    found = await cache.get(ATLAS)

    assert found is not None
    assert found.etag == '"v1"'


async def test_fill_that_started_before_an_invalidation_is_not_stored(
    cache: ResponseCache,
) -> None:
    seen = await cache.generation()
    await cache.invalidate(affected_keys(change()), reason="content_changed")

    stored = await cache.store(ATLAS, entry("old"), seen)

    assert stored is False
    assert await cache.get(ATLAS) is None


async def test_fill_is_refused_after_an_unrelated_invalidation_too(cache: ResponseCache) -> None:
    seen = await cache.generation()
    await cache.invalidate(affected_keys(change("about", "me")), reason="content_changed")

    assert await cache.store(ATLAS, entry(), seen) is False


async def test_invalidation_drops_exactly_the_affected_keys(cache: ResponseCache) -> None:
    for key in (ATLAS, BOREALIS, ABOUT, bundle_key()):
        await fill(cache, key, entry())

    await cache.invalidate(affected_keys(change()), reason="content_changed")

    assert await cache.get(ATLAS) is None
    assert await cache.get(bundle_key()) is None
    assert await cache.get(BOREALIS) is not None
    assert await cache.get(ABOUT) is not None


async def test_clear_drops_every_entry(cache: ResponseCache) -> None:
    for key in (ATLAS, ABOUT):
        await fill(cache, key, entry())

    await cache.clear(reason="flush")

    assert [await cache.get(key) for key in (ATLAS, ABOUT)] == [None, None]


async def test_entry_past_its_ttl_is_stale_not_fresh(cache: ResponseCache) -> None:
    old = CachedResponse(body=b"{}", etag='"old"', stored_at=time.time() - 120)

    assert cache.is_fresh(old) is False


# Redis specifics


async def test_redis_entries_live_under_content_keys(
    redis_server: ManagedServer, redis_prefix: str
) -> None:
    cache = ResponseCache(
        RedisLink(redis_server.url, component="cache", key_prefix=redis_prefix),
        ttl_s=60,
        stale_ttl_s=60,
        max_entries=10,
    )
    await fill(cache, ATLAS, entry())
    client = redis_asyncio.from_url(redis_server.url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}content:*")]
        ttl = await client.pttl(f"{redis_prefix}{ATLAS}")
    finally:
        await client.aclose()
        await cache.close()

    assert keys == [f"{redis_prefix}{ATLAS}".encode()]
    assert 0 < ttl <= 120_000


async def test_deleting_content_keys_by_hand_empties_the_cache(
    redis_server: ManagedServer, redis_prefix: str
) -> None:
    cache = ResponseCache(
        RedisLink(redis_server.url, component="cache", key_prefix=redis_prefix),
        ttl_s=60,
        stale_ttl_s=60,
        max_entries=10,
    )
    await fill(cache, ATLAS, entry())
    client = redis_asyncio.from_url(redis_server.url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}content:*")]
        await client.delete(*keys)
        found = await cache.get(ATLAS)
    finally:
        await client.aclose()
        await cache.close()

    assert found is None


@pytest.fixture
async def own_redis() -> AsyncIterator[ManagedServer]:
    server = start_redis(prefer_env=False)
    yield server
    server.stop()


async def test_redis_outage_falls_back_to_memory_without_raising(
    own_redis: ManagedServer,
) -> None:
    cache = ResponseCache(
        RedisLink(own_redis.url, component="cache"), ttl_s=60, stale_ttl_s=60, max_entries=10
    )
    await fill(cache, ATLAS, entry("in-redis"))
    own_redis.stop_process_only()

    missing = await cache.get(ATLAS)
    stored = await fill(cache, ATLAS, entry("in-memory"))
    found = await cache.get(ATLAS)
    await cache.close()

    assert missing is None
    assert stored is True
    assert found is not None
    assert found.etag == '"in-memory"'
    assert cache.backend == "memory"


async def test_redis_is_cleared_before_it_is_trusted_again(own_redis: ManagedServer) -> None:
    cache = ResponseCache(
        RedisLink(own_redis.url, component="cache"), ttl_s=60, stale_ttl_s=60, max_entries=10
    )
    await fill(cache, ATLAS, entry("before-outage"))
    own_redis.stop_process_only()
    await cache.get(ATLAS)  # the failed read switches the cache to memory
    own_redis.restart()
    await _plant(own_redis.url, ATLAS, entry("stale"))
    await _wait_until_redis_is_used(cache)

    found = await cache.get(ATLAS)
    await cache.close()

    assert found is None


async def _plant(url: str, key: str, value: CachedResponse) -> None:
    client = redis_asyncio.from_url(url)
    try:
        await client.set(key, msgspec.msgpack.encode(value))
    finally:
        await client.aclose()


async def _wait_until_redis_is_used(cache: ResponseCache) -> None:
    deadline = time.monotonic() + 10
    while cache.link.client is None:
        assert time.monotonic() < deadline, "the cache never went back to Redis"
        await asyncio.sleep(0.05)
