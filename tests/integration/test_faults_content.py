"""The content service killed or frozen under admin writes: nothing is lost or doubled.

A write that got a 2xx is in the database, has its history entry and was
announced on the JetStream events stream. A write cut off by a crash is
settled by the client's retry with the same ``Idempotency-Key``: the retry
either replays the committed result or performs the write, never both.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import nats
import pytest
from portfolio_shared.contract.events import ContentChanged, decode_event
from stack import run_coroutine

if TYPE_CHECKING:
    from portfolio_shared.testing.servers import ManagedServer
    from stack import Stack

    from conftest import MakeStack

WRITES = 24
"""Admin creates sent one after another while the content service is killed twice."""

SETTLE_DEADLINE_S = 60.0
"""Maximum time one write is retried before the test fails, in seconds."""

FAULT_TYPE = "fault"


@dataclass
class WriteLog:
    """What the writer thread saw: final replies by idempotency key, and every status."""

    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)
    done: int = 0
    progressed: threading.Condition = field(default_factory=threading.Condition)

    def wait_done(self, count: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self.progressed:
            while self.done < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.done} of {count} writes settled")
                self.progressed.wait(left)


def write_until_settled(stack: Stack, log: WriteLog) -> None:
    """Create ``WRITES`` items, retrying each with its own idempotency key until a 2xx."""
    headers = {"X-Admin-Key": stack.admin_key}
    with httpx.Client(base_url=stack.gateway_url, timeout=15, headers=headers) as client:
        for index in range(WRITES):
            key = str(uuid.uuid4())
            body = {"type": FAULT_TYPE, "data": {"title": f"Write {index}"}, "status": "published"}
            deadline = time.monotonic() + SETTLE_DEADLINE_S
            while time.monotonic() < deadline:
                try:
                    response = client.post(
                        "/api/v1/admin/content", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    continue
                log.statuses.append(response.status_code)
                if response.is_success:
                    log.created[key] = response.json()["data"]
                    break
                time.sleep(0.1)
            with log.progressed:
                log.done += 1
                log.progressed.notify_all()


async def _announced_ids(stack: Stack) -> dict[str, list[str]]:
    client = await nats.connect(stack.nats_url)
    try:
        stream = client.jetstream()
        info = await stream.stream_info(stack.subjects.events_stream)
        announced: dict[str, list[str]] = {}
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await stream.get_msg(stack.subjects.events_stream, sequence)
            event = decode_event(message.data or b"")
            if isinstance(event, ContentChanged):
                announced.setdefault(event.content_id, []).append(str(event.change))
        return announced
    finally:
        await client.close()


def announced_changes(stack: Stack) -> dict[str, list[str]]:
    """Return the change kinds announced on the events stream, by content id."""
    result: dict[str, list[str]] = run_coroutine(_announced_ids(stack))
    return result


def poll(check: Any, *, deadline_s: float) -> Any:
    """Call ``check`` until it returns a truthy value or the deadline passes; return the last value."""
    deadline = time.monotonic() + deadline_s
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(0.2)
        value = check()
    return value


@pytest.fixture
def write_stack(make_stack: MakeStack, own_nats: ManagedServer) -> Stack:
    return make_stack(llm=False, nats_url=own_nats.url, env={"ADMIN_REQUEST_TIMEOUT_MS": "3000"})


@pytest.mark.slow
def test_faults_lose_no_write(write_stack: Stack, own_nats: ManagedServer) -> None:
    stack = write_stack
    log = WriteLog()
    writer = threading.Thread(target=write_until_settled, args=(stack, log), daemon=True)
    writer.start()

    for settled in (WRITES // 4, WRITES // 2):
        log.wait_done(settled)
        stack.kill("content")
        stack.start("content")
    log.wait_done(3 * WRITES // 4)
    own_nats.stop_process_only()
    time.sleep(1.0)
    own_nats.restart()
    writer.join(SETTLE_DEADLINE_S * 2)

    admin = {"X-Admin-Key": stack.admin_key}

    def list_faults() -> httpx.Response | None:
        response = httpx.get(
            stack.gateway_url + f"/api/v1/admin/content?type={FAULT_TYPE}&limit=100",
            headers=admin,
            timeout=10,
        )
        return response if response.status_code == 200 else None

    # The writes may all have settled before NATS went down; until the gateway and
    # the content service are reconnected, requests get 503 at once.
    listing = poll(list_faults, deadline_s=SETTLE_DEADLINE_S)
    assert listing is not None, "the admin list never answered 200 after the NATS restart"
    listed = listing.json()["data"]
    titles = sorted(item["data"]["title"] for item in listed)
    created_ids = {item["id"] for item in log.created.values()}
    history_kinds = {
        content_id: [
            entry["changeType"]
            for entry in httpx.get(
                stack.gateway_url + f"/api/v1/admin/content/{content_id}/history",
                headers=admin,
                timeout=10,
            ).json()["data"]
        ]
        for content_id in created_ids
    }
    announced = poll(
        lambda: (
            (changes := announced_changes(stack))
            and all("created" in changes.get(content_id, []) for content_id in created_ids)
            and changes
        ),
        deadline_s=20,
    )

    assert len(log.created) == WRITES
    assert 500 not in log.statuses
    assert titles == sorted(f"Write {index}" for index in range(WRITES))
    assert {item["id"] for item in listed} == created_ids
    assert all(kinds == ["created"] for kinds in history_kinds.values())
    assert announced
    assert all(announced[content_id].count("created") == 1 for content_id in created_ids)


@pytest.mark.slow
def test_retry_after_crash_replays_write(write_stack: Stack) -> None:
    stack = write_stack
    headers = {"X-Admin-Key": stack.admin_key, "Idempotency-Key": str(uuid.uuid4())}
    body = {"type": FAULT_TYPE, "data": {"title": "Committed once"}}
    first = httpx.post(
        stack.gateway_url + "/api/v1/admin/content", json=body, headers=headers, timeout=10
    )

    stack.kill("content")
    stack.start("content")
    retry = httpx.post(
        stack.gateway_url + "/api/v1/admin/content", json=body, headers=headers, timeout=10
    )

    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry.headers.get("x-idempotent-replayed") == "true"
    assert retry.json() == first.json()


@pytest.mark.slow
def test_frozen_content_serves_cache_only(write_stack: Stack) -> None:
    stack = write_stack
    admin = {"X-Admin-Key": stack.admin_key}
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as client:
        created = client.post(
            "/api/v1/admin/content",
            headers=admin,
            json={"type": FAULT_TYPE, "data": {"title": "Cached item"}, "status": "published"},
        ).json()["data"]
        item_path = f"/api/v1/content/{FAULT_TYPE}/{created['slug']}"
        # The item's own "created" event invalidates its cache entry, so the cache is
        # warmed only after that event was announced, until a response is a cache hit.
        poll(lambda: created["id"] in announced_changes(stack), deadline_s=20)
        warm = poll(lambda: client.get(item_path).headers.get("x-cache") == "HIT", deadline_s=10)

        stack.freeze("content")
        try:
            cached = client.get(item_path)
            write = client.post(
                "/api/v1/admin/content",
                headers=admin,
                json={"type": FAULT_TYPE, "data": {"title": "While frozen"}},
            )
            readiness = poll(
                lambda: (answer := client.get("/api/health/ready")).status_code == 503 and answer,
                deadline_s=10,
            )
        finally:
            stack.thaw("content")

        recovered = poll(
            lambda: (
                client.post(
                    "/api/v1/admin/content",
                    headers=admin,
                    json={"type": FAULT_TYPE, "data": {"title": "After thaw"}},
                ).status_code
                == 201
            ),
            deadline_s=30,
        )
        ready_again = poll(
            lambda: client.get("/api/health/ready").status_code == 200, deadline_s=30
        )

    assert warm
    assert cached.status_code == 200
    assert cached.json()["data"]["id"] == created["id"]
    assert write.status_code == 503
    assert readiness
    assert readiness.json()["status"] == "unhealthy"
    assert recovered
    assert ready_again


@pytest.mark.slow
def test_locked_database_rejects_writes_then_recovers(write_stack: Stack) -> None:
    stack = write_stack
    headers = {"X-Admin-Key": stack.admin_key, "Idempotency-Key": str(uuid.uuid4())}
    body = {"type": FAULT_TYPE, "data": {"title": "Locked out"}}
    database = sqlite3.connect(stack.data_dir / "portfolio.db", isolation_level=None)
    try:
        database.execute("BEGIN EXCLUSIVE")
        locked = httpx.post(
            stack.gateway_url + "/api/v1/admin/content", json=body, headers=headers, timeout=15
        )
        database.execute("ROLLBACK")
    finally:
        database.close()
    retry = httpx.post(
        stack.gateway_url + "/api/v1/admin/content", json=body, headers=headers, timeout=15
    )
    listed = httpx.get(
        stack.gateway_url + f"/api/v1/admin/content?type={FAULT_TYPE}",
        headers={"X-Admin-Key": stack.admin_key},
        timeout=10,
    ).json()["data"]

    assert locked.status_code == 503
    assert locked.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert retry.status_code == 201
    assert retry.headers.get("x-idempotent-replayed") is None
    assert [item["data"]["title"] for item in listed] == ["Locked out"]
