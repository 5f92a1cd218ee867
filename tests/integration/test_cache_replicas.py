"""The content cache across two real gateway replicas, with Redis and with memory
caches: invalidation reaches every replica, ETags hold across replicas, and Redis,
NATS and the content service can fail under reads without a stale or failed response."""

from __future__ import annotations

import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from portfolio_shared.testing.servers import ManagedServer

if TYPE_CHECKING:
    from collections.abc import Callable

    from stack import Stack

    MakeStack = Callable[..., Stack]

CONTENT = "/api/v1/content"
ADMIN_CONTENT = "/api/v1/admin/content"

VISIBLE_WITHIN_S = 1.0
"""How soon a change made through one replica must be served by the other, in seconds."""

RECOVERY_DEADLINE_S = 20.0
"""Maximum wait for a replica to be back in step after NATS restarts, in seconds."""

NO_RATE_LIMITS = {"RATE_LIMITING": "false"}


def first_project(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}{CONTENT}", params={"type": "project"}, timeout=10)
    response.raise_for_status()
    projects: list[dict[str, Any]] = response.json()["data"]
    assert projects, "the sample portfolio has no project"
    return projects[0]


def item_path(item: dict[str, Any]) -> str:
    return f"{CONTENT}/{item['type']}/{item['slug']}"


def retitle(stack: Stack, url: str, item: dict[str, Any]) -> str:
    """Give ``item`` a new title through the admin API of ``url``; return the title."""
    title = f"Retitled {secrets.token_hex(4)}"
    response = httpx.put(
        f"{url}{ADMIN_CONTENT}/{item['id']}",
        json={"data": {**item["data"], "title": title}},
        headers={"X-Admin-Key": stack.admin_key},
        timeout=10,
    )
    response.raise_for_status()
    return title


def poll_title(url: str, path: str, title: str, deadline_s: float) -> httpx.Response:
    """Read ``path`` until it shows ``title`` or ``deadline_s`` passes; return the last response."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = httpx.get(f"{url}{path}", timeout=10)
        shown = (
            response.json().get("data", {}).get("data", {}).get("title")
            if response.status_code == 200
            else None
        )
        if shown == title or time.monotonic() >= deadline:
            return response
        time.sleep(0.02)


def title_of(response: httpx.Response) -> Any:
    return response.json()["data"]["data"]["title"]


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "memory"])
def test_update_through_one_replica_is_served_by_the_other_within_a_second(
    make_stack: MakeStack, redis: bool
) -> None:
    stack = make_stack(replicas={"gateway": 2}, redis=redis, env=NO_RATE_LIMITS)
    first, second = stack.gateway_urls()
    item = first_project(second)
    httpx.get(f"{second}{item_path(item)}", timeout=10)
    cached = httpx.get(f"{second}{item_path(item)}", timeout=10)

    title = retitle(stack, first, item)
    served = poll_title(second, item_path(item), title, VISIBLE_WITHIN_S)

    assert cached.headers["x-cache"] == "HIT"
    assert title_of(served) == title


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "memory"])
def test_etag_from_one_replica_gets_304_from_the_other(make_stack: MakeStack, redis: bool) -> None:
    stack = make_stack(replicas={"gateway": 2}, redis=redis, env=NO_RATE_LIMITS)
    first, second = stack.gateway_urls()
    path = item_path(first_project(first))
    etag = httpx.get(f"{first}{path}", timeout=10).headers["etag"]

    response = httpx.get(f"{second}{path}", headers={"If-None-Match": etag}, timeout=10)

    assert response.status_code == 304


def test_bundle_changes_on_every_replica_after_an_update(make_stack: MakeStack) -> None:
    stack = make_stack(replicas={"gateway": 2}, env=NO_RATE_LIMITS)
    first, second = stack.gateway_urls()
    item = first_project(first)
    before = httpx.get(f"{second}{CONTENT}/bundle", timeout=10).headers["etag"]

    retitle(stack, first, item)
    deadline = time.monotonic() + VISIBLE_WITHIN_S
    while (after := httpx.get(f"{second}{CONTENT}/bundle", timeout=10).headers["etag"]) == before:
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)

    assert after != before


# Failures under reads


class Reader:
    """Reads ``paths`` round-robin from ``urls`` in a thread, recording every status."""

    def __init__(self, urls: list[str], paths: list[str]) -> None:
        self.statuses: list[int] = []
        self._urls = urls
        self._paths = paths
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-reader")

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        number = 0
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                url = self._urls[number % len(self._urls)]
                path = self._paths[number % len(self._paths)]
                try:
                    self.statuses.append(client.get(f"{url}{path}").status_code)
                except httpx.HTTPError:
                    self.statuses.append(0)
                number += 1


def test_redis_stopped_and_started_under_reads_fails_no_request(
    make_stack: MakeStack, own_redis: ManagedServer
) -> None:
    stack = make_stack(
        replicas={"gateway": 2},
        env={**NO_RATE_LIMITS, "REDIS_URL": own_redis.url, "REDIS_KEY_PREFIX": "cache-test:"},
    )
    urls = stack.gateway_urls()
    item = first_project(urls[0])
    paths = [f"{CONTENT}/bundle", item_path(item), f"{CONTENT}?type=project"]

    with Reader(urls, paths) as reader:
        time.sleep(0.5)
        own_redis.stop_process_only()
        time.sleep(1.5)
        own_redis.restart()
        time.sleep(2.5)

    assert len(reader.statuses) > 20
    assert set(reader.statuses) == {200}


def test_after_a_nats_restart_updates_still_reach_every_replica(
    make_stack: MakeStack, own_nats: ManagedServer
) -> None:
    stack = make_stack(replicas={"gateway": 2}, nats_url=own_nats.url, env=NO_RATE_LIMITS)
    first, second = stack.gateway_urls()
    item = first_project(first)
    httpx.get(f"{second}{item_path(item)}", timeout=10)

    own_nats.restart()
    title = _retitle_when_possible(stack, first, item)
    served = poll_title(second, item_path(item), title, RECOVERY_DEADLINE_S)

    assert title_of(served) == title


def _retitle_when_possible(stack: Stack, url: str, item: dict[str, Any]) -> str:
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while True:
        try:
            return retitle(stack, url, item)
        except httpx.HTTPStatusError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def test_stopped_content_service_gets_stale_cache(
    make_stack: MakeStack,
) -> None:
    stack = make_stack(env={**NO_RATE_LIMITS, "CACHE_TTL_S": "0.001"})
    url = stack.gateway_url
    path = item_path(first_project(url))
    httpx.get(f"{url}{path}", timeout=10)

    stack.stop("content")
    stale = httpx.get(f"{url}{path}", timeout=10)
    uncached = httpx.get(f"{url}{CONTENT}/project/never-read-{secrets.token_hex(3)}", timeout=10)

    assert stale.status_code == 200
    assert stale.headers["x-cache"] == "STALE"
    assert uncached.status_code == 503
