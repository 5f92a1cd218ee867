"""Public content through the gateway's cache: hits that touch no NATS, ETags
and 304, Cache-Control, event-driven invalidation (exact, with no stale fill),
the flush endpoint, stale-if-error, and resynchronisation after NATS restarts."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import nats
import pytest
from portfolio_gateway.testing import (
    ADMIN_KEY,
    FakeContentService,
    content_item,
    gateway_client,
    gateway_settings,
    publish_change,
    state_of,
)
from portfolio_shared.contract import Subjects
from portfolio_shared.testing.servers import start_nats

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from portfolio_gateway.testing import GatewayTestClient
    from portfolio_shared.testing.servers import ManagedServer

ITEM_PATH = "/api/v1/content/project/atlas"


def answer_item(fake: FakeContentService, version: int, **options: Any) -> dict[str, Any]:
    item = content_item(version=version)
    fake.answer(
        fake.subjects.content_public_item,
        {"data": item},
        headers={"ETag": f'"atlas-{version}"'},
        **options,
    )
    return item


async def applied(client: GatewayTestClient, sequence: int) -> None:
    listener = state_of(client).invalidation
    assert listener is not None
    assert await listener.wait_for_sequence(sequence, timeout_s=10)


# Hits, ETags and headers


async def test_second_read_is_a_hit_without_nats(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    answer_item(fake_content, 1)

    first = await gateway.get(ITEM_PATH)
    second = await gateway.get(ITEM_PATH)

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert len(fake_content.requests_on(fake_content.subjects.content_public_item)) == 1
    assert second.content == first.content


async def test_etag_is_the_services_strong_etag(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    answer_item(fake_content, 3)

    response = await gateway.get(ITEM_PATH)

    assert response.headers["etag"] == '"atlas-3"'


@pytest.mark.parametrize("header", ['"atlas-1"', 'W/"atlas-1"', '"other", "atlas-1"', "*"])
async def test_matching_if_none_match_is_304_with_no_body(
    gateway: GatewayTestClient, fake_content: FakeContentService, header: str
) -> None:
    answer_item(fake_content, 1)
    await gateway.get(ITEM_PATH)

    response = await gateway.get(ITEM_PATH, headers={"If-None-Match": header})

    assert (response.status_code, response.content) == (304, b"")


async def test_stale_if_none_match_gets_the_new_body(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    answer_item(fake_content, 2)

    response = await gateway.get(ITEM_PATH, headers={"If-None-Match": '"atlas-1"'})

    assert response.status_code == 200


async def test_without_a_service_etag_one_is_derived_from_item_versions(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_public_list, {"data": [content_item()]})
    first = await gateway.get("/api/v1/content")
    fake_content.answer(
        fake_content.subjects.content_public_list, {"data": [content_item(version=2)]}
    )
    await state_of(gateway).cache.clear(reason="test")

    second = await gateway.get("/api/v1/content")

    assert first.headers["etag"] != second.headers["etag"]


@pytest.mark.parametrize(
    ("path", "max_age"),
    [("/api/v1/content", 60), ("/api/v1/content/bundle", 300), (ITEM_PATH, 300)],
)
async def test_cache_control_follows_the_contract(
    gateway: GatewayTestClient, fake_content: FakeContentService, path: str, max_age: int
) -> None:
    answer_item(fake_content, 1)
    fake_content.answer(fake_content.subjects.content_public_bundle, {"data": {}})

    response = await gateway.get(path)

    assert response.headers["cache-control"] == f"public, max-age={max_age}"


async def test_service_errors_are_passed_on_and_not_cached(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    from portfolio_shared.errors import NotFoundError

    fake_content.answer(
        fake_content.subjects.content_public_item,
        error=NotFoundError("Content with identifier 'project/atlas' not found"),
    )
    await gateway.get(ITEM_PATH)

    response = await gateway.get(ITEM_PATH)

    assert response.status_code == 404
    assert len(fake_content.requests_on(fake_content.subjects.content_public_item)) == 2


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_concurrent_misses_share_one_content_request(
    make_gateway: Callable[..., Any],
    fake_content: FakeContentService,
    redis_server: ManagedServer,
    redis_prefix: str,
    backend: str,
) -> None:
    redis = {"redis_url": redis_server.url, "redis_key_prefix": redis_prefix}
    release = asyncio.Event()
    answer_item(fake_content, 1, gate=release)
    fake_content.answer(fake_content.subjects.content_public_list, {"data": []})
    async with make_gateway(**(redis if backend == "redis" else {})) as gateway:
        # One read first, so the Redis link is up and its start-up clear is done.
        await gateway.get("/api/v1/content")
        reads = [asyncio.create_task(gateway.get(ITEM_PATH)) for _ in range(8)]
        await asyncio.wait_for(fake_content.arrived.wait(), timeout=10)
        await _wait_until(lambda: state_of(gateway).cache.flights.waiting == 8)
        release.set()
        responses = await asyncio.gather(*reads)

    assert [response.status_code for response in responses] == [200] * 8
    assert {response.json()["data"]["version"] for response in responses} == {1}
    assert len(fake_content.requests_on(fake_content.subjects.content_public_item)) == 1


async def test_concurrent_misses_share_a_service_error(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    from portfolio_shared.errors import NotFoundError

    release = asyncio.Event()
    fake_content.answer(
        fake_content.subjects.content_public_item,
        error=NotFoundError("Content with identifier 'project/atlas' not found"),
        gate=release,
    )
    reads = [asyncio.create_task(gateway.get(ITEM_PATH)) for _ in range(4)]
    await asyncio.wait_for(fake_content.arrived.wait(), timeout=10)
    await _wait_until(lambda: state_of(gateway).cache.flights.waiting == 4)
    release.set()
    responses = await asyncio.gather(*reads)

    assert [response.status_code for response in responses] == [404] * 4
    assert len(fake_content.requests_on(fake_content.subjects.content_public_item)) == 1


async def test_miss_after_change_starts_new_fill(
    gateway: GatewayTestClient, fake_content: FakeContentService, nats_server: ManagedServer
) -> None:
    release = asyncio.Event()
    item = answer_item(fake_content, 1, gate=release)
    old_read = asyncio.create_task(gateway.get(ITEM_PATH))
    await asyncio.wait_for(fake_content.arrived.wait(), timeout=10)

    await applied(gateway, await publish_change(nats_server.url, fake_content.subjects, item))
    answer_item(fake_content, 2)
    new = await gateway.get(ITEM_PATH)
    release.set()
    old = await old_read

    assert new.json()["data"]["version"] == 2
    assert old.json()["data"]["version"] == 1
    assert len(fake_content.requests_on(fake_content.subjects.content_public_item)) == 2


# Invalidation


async def test_content_change_event_drops_the_item(
    gateway: GatewayTestClient, fake_content: FakeContentService, nats_server: ManagedServer
) -> None:
    item = answer_item(fake_content, 1)
    await gateway.get(ITEM_PATH)
    answer_item(fake_content, 2)

    await applied(gateway, await publish_change(nats_server.url, fake_content.subjects, item))
    response = await gateway.get(ITEM_PATH)

    assert response.json()["data"]["version"] == 2


async def test_change_leaves_other_types_cached(
    gateway: GatewayTestClient, fake_content: FakeContentService, nats_server: ManagedServer
) -> None:
    fake_content.answer(fake_content.subjects.content_public_list, {"data": []})
    await gateway.get("/api/v1/content?type=about")

    sequence = await publish_change(nats_server.url, fake_content.subjects, content_item())
    await applied(gateway, sequence)
    response = await gateway.get("/api/v1/content?type=about")

    assert response.headers["x-cache"] == "HIT"


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_read_that_began_before_a_change_does_not_fill_the_old_value(
    make_gateway: Callable[..., Any],
    fake_content: FakeContentService,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    redis_prefix: str,
    backend: str,
) -> None:
    redis = {"redis_url": redis_server.url, "redis_key_prefix": redis_prefix}
    release = asyncio.Event()
    item = answer_item(fake_content, 1, gate=release)
    async with make_gateway(**(redis if backend == "redis" else {})) as gateway:
        slow_read = asyncio.create_task(gateway.get(ITEM_PATH))
        await asyncio.wait_for(fake_content.arrived.wait(), timeout=10)

        # The change commits and is applied while the old reply is still on its way.
        await applied(gateway, await publish_change(nats_server.url, fake_content.subjects, item))
        release.set()
        old = await slow_read
        answer_item(fake_content, 2)
        after = await gateway.get(ITEM_PATH)

    assert old.json()["data"]["version"] == 1
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["data"]["version"] == 2


async def test_flush_endpoint_empties_the_cache(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    answer_item(fake_content, 1)
    await gateway.get(ITEM_PATH)

    flushed = await gateway.post("/api/v1/admin/cache/flush", headers={"X-Admin-Key": ADMIN_KEY})
    response = await gateway.get(ITEM_PATH)

    assert flushed.status_code == 200
    assert response.headers["x-cache"] == "MISS"


async def test_flush_through_one_replica_empties_another(
    make_gateway: Callable[..., Any], fake_content: FakeContentService
) -> None:
    answer_item(fake_content, 1)
    async with make_gateway() as first, make_gateway() as second:
        await second.get(ITEM_PATH)
        flushed = await first.post("/api/v1/admin/cache/flush", headers={"X-Admin-Key": ADMIN_KEY})
        await applied(second, flushed.json()["data"]["sequence"])
        response = await second.get(ITEM_PATH)

    assert response.headers["x-cache"] == "MISS"


# Stale-if-error


def expire_fresh_entries(client: GatewayTestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shift the gateway cache's clock one TTL ahead: every entry stored so far turns stale."""
    cache = state_of(client).cache
    monkeypatch.setattr(cache, "_clock", lambda: time.time() + cache.ttl_s)


async def test_stale_copy_is_served_when_the_content_service_is_gone(
    make_gateway: Callable[..., Any],
    fake_content: FakeContentService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer_item(fake_content, 1)
    async with make_gateway(cache_ttl_s=0.001, nats_request_timeout_ms=300) as client:
        await client.get(ITEM_PATH)
        # Without the shift, a read within the 1 ms TTL would still be a fresh hit.
        expire_fresh_entries(client, monkeypatch)
        await fake_content.stop()
        response = await client.get(ITEM_PATH)

    assert response.status_code == 200
    assert response.headers["x-cache"] == "STALE"
    assert response.headers["warning"].startswith("110")


async def test_with_nothing_cached_an_unavailable_service_is_503(
    make_gateway: Callable[..., Any],
) -> None:
    async with make_gateway(nats_request_timeout_ms=300) as client:
        response = await client.get(ITEM_PATH)

    assert response.status_code == 503


# NATS restarts


@pytest.fixture
async def own_nats() -> AsyncIterator[ManagedServer]:
    server = start_nats(prefer_env=False)
    yield server
    server.stop()


async def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


async def _wait_synced(client: GatewayTestClient, expected: bool) -> None:
    listener = state_of(client).invalidation
    assert listener is not None
    deadline = time.monotonic() + 15
    while listener.synced is not expected:
        assert time.monotonic() < deadline, f"the cache never became synced={expected}"
        await asyncio.sleep(0.05)


async def test_nats_down_serves_the_cached_copy_as_stale(
    own_nats: ManagedServer, namespace: str
) -> None:
    fake_client = await nats.connect(
        own_nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    fake = FakeContentService(fake_client, Subjects(namespace))
    await fake.start()
    answer_item(fake, 1)
    settings = gateway_settings(own_nats.url, namespace, nats_request_timeout_ms=300)
    async with gateway_client(settings) as client:
        await client.get(ITEM_PATH)
        own_nats.stop_process_only()
        await _wait_synced(client, False)
        response = await client.get(ITEM_PATH)
    await fake_client.close()

    assert response.headers["x-cache"] == "STALE"


async def test_after_a_nats_restart_nothing_cached_before_is_served_as_fresh(
    own_nats: ManagedServer, namespace: str
) -> None:
    fake_client = await nats.connect(
        own_nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    fake = FakeContentService(fake_client, Subjects(namespace))
    await fake.start()
    answer_item(fake, 1)
    settings = gateway_settings(own_nats.url, namespace)
    async with gateway_client(settings) as client:
        await client.get(ITEM_PATH)
        own_nats.stop_process_only()
        await _wait_synced(client, False)
        # A change made while this replica was cut off, whose event it may never see live.
        answer_item(fake, 2)
        own_nats.restart()
        await _wait_synced(client, True)
        response = await _get_when_answered(client, ITEM_PATH)
    await fake_client.close()

    assert response.json()["data"]["version"] == 2


async def test_new_connection_is_unsynced_until_its_resync(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    answer_item(fake_content, 1)
    await gateway.get(ITEM_PATH)
    listener = state_of(gateway).invalidation
    assert listener is not None
    assert listener.synced

    # nats-py counts a reconnect, and reports connected, before the callback runs.
    state_of(gateway).nats.stats["reconnects"] += 1
    unsynced_read = await gateway.get(ITEM_PATH)

    assert not listener.synced
    assert unsynced_read.headers["x-cache"] == "MISS"


async def test_reconnect_during_a_resync_resyncs_again(
    gateway: GatewayTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = state_of(gateway).invalidation
    assert listener is not None
    nats_client = state_of(gateway).nats
    resync = listener._resync
    calls = 0

    async def resync_then_reconnect(*, initial: bool) -> None:
        nonlocal calls
        calls += 1
        await resync(initial=initial)
        if calls == 1:
            # Another reconnect lands while the first resync was running.
            nats_client.stats["reconnects"] += 1

    monkeypatch.setattr(listener, "_resync", resync_then_reconnect)
    nats_client.stats["reconnects"] += 1
    listener.on_reconnected()
    await _wait_synced(gateway, True)

    assert calls == 2


async def _get_when_answered(client: GatewayTestClient, path: str) -> Any:
    deadline = time.monotonic() + 15
    while True:
        response = await client.get(path)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.1)
