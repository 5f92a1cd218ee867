"""Races a hostile or careless client can start: duplicate writes with one
``Idempotency-Key``, concurrent updates of one version, and a burst against
the rate limit. Each has exactly the intended effect: one item, one update,
and as many successful chat turns as the bucket holds tokens."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from portfolio_shared.testing.fake_llm import FakeLlm
    from stack import Stack

    from conftest import MakeStack

PARALLEL = 12
"""Requests sent at once in each race."""


def race(
    stack: Stack, method: str, path: str, bodies: list[Any], headers: dict[str, str]
) -> list[httpx.Response]:
    """Send one request per body, all at once, to the first gateway; return the responses in order."""
    with (
        httpx.Client(base_url=stack.gateway_url, timeout=30, headers=headers) as client,
        ThreadPoolExecutor(max_workers=len(bodies)) as pool,
    ):
        return list(pool.map(lambda body: client.request(method, path, json=body), bodies))


@pytest.fixture
def race_stack(make_stack: MakeStack) -> Stack:
    return make_stack(llm=False)


def test_concurrent_duplicates_create_one_item(race_stack: Stack) -> None:
    stack = race_stack
    headers = {"X-Admin-Key": stack.admin_key, "Idempotency-Key": str(uuid.uuid4())}
    body = {"type": "race", "data": {"title": "Only once"}}

    responses = race(stack, "POST", "/api/v1/admin/content", [body] * PARALLEL, headers)
    listed = httpx.get(
        stack.gateway_url + "/api/v1/admin/content?type=race",
        headers={"X-Admin-Key": stack.admin_key},
        timeout=10,
    ).json()["data"]
    created_ids = {r.json()["data"]["id"] for r in responses if r.status_code == 201}

    assert all(r.status_code in (201, 409) for r in responses)
    assert len(listed) == 1
    assert created_ids == {listed[0]["id"]}


def test_reused_key_new_body_rejected(race_stack: Stack) -> None:
    stack = race_stack
    headers = {"X-Admin-Key": stack.admin_key, "Idempotency-Key": str(uuid.uuid4())}
    url = stack.gateway_url + "/api/v1/admin/content"

    first = httpx.post(url, json={"type": "race", "data": {"title": "A"}}, headers=headers)
    second = httpx.post(url, json={"type": "race", "data": {"title": "B"}}, headers=headers)

    assert first.status_code == 201
    assert second.status_code in (400, 409, 422)


def test_concurrent_updates_apply_once(race_stack: Stack) -> None:
    stack = race_stack
    admin = {"X-Admin-Key": stack.admin_key}
    created = httpx.post(
        stack.gateway_url + "/api/v1/admin/content",
        json={"type": "race", "data": {"title": "Versioned"}},
        headers=admin,
        timeout=10,
    ).json()["data"]
    bodies = [{"data": {"title": f"Edit {index}"}} for index in range(PARALLEL)]

    responses = race(
        stack,
        "PUT",
        f"/api/v1/admin/content/{created['id']}",
        bodies,
        {**admin, "If-Match": str(created["version"])},
    )
    statuses = Counter(r.status_code for r in responses)
    stored = httpx.get(
        stack.gateway_url + f"/api/v1/admin/content/{created['id']}", headers=admin, timeout=10
    ).json()["data"]

    assert statuses[200] == 1
    assert set(statuses) <= {200, 409, 412}
    assert stored["version"] == created["version"] + 1


@pytest.mark.parametrize("redis", [False, True], ids=["memory", "redis"])
def test_chat_burst_spends_the_capacity(
    make_stack: MakeStack, fake_llm: FakeLlm, redis: bool
) -> None:
    stack = make_stack(
        redis=redis, env={"RATE_LIMIT_CAPACITY": "5", "RATE_LIMIT_REFILL_RATE": "0.001"}
    )
    bodies = [{"message": "hi", "visitorId": f"burst-{index}"} for index in range(PARALLEL * 2)]

    responses = race(stack, "POST", "/api/v1/chat", bodies, {})
    statuses = Counter(r.status_code for r in responses)

    assert statuses == {200: 5, 429: PARALLEL * 2 - 5}


def test_burst_across_replicas_shares_one_bucket(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    stack = make_stack(
        redis=True,
        replicas={"gateway": 2},
        env={"RATE_LIMIT_CAPACITY": "5", "RATE_LIMIT_REFILL_RATE": "0.001"},
    )
    urls = stack.gateway_urls()
    requests = [
        (urls[index % len(urls)], {"message": "hi", "visitorId": f"replica-burst-{index}"})
        for index in range(PARALLEL * 2)
    ]

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=len(requests)) as pool:
        responses = list(
            pool.map(lambda item: client.post(item[0] + "/api/v1/chat", json=item[1]), requests)
        )
    statuses = Counter(r.status_code for r in responses)

    assert len(urls) == 2
    assert statuses == {200: 5, 429: PARALLEL * 2 - 5}
