"""The admin content API through a real gateway and content service: every route, its
statuses and errors, optimistic concurrency, idempotent retries, and the operator
commands (Markdown import, backup and restore, events held back through a NATS outage)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from nats.js.api import DeliverPolicy
from portfolio_shared.contract import ContentChanged
from portfolio_shared.contract.events import decode_event
from portfolio_shared.nats_client import connect_nats
from portfolio_shared.testing.servers import start_nats
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from portfolio_shared.testing.servers import ManagedServer

pytestmark = pytest.mark.timeout(180)

ADMIN = "/api/v1/admin/content"
ONLY_CONTENT_AND_GATEWAY = {"chat": 0, "health": 0}
NO_RATE_LIMITS = {"RATE_LIMITING": "false"}
SAMPLE_ITEMS = 14
"""Items of the bundled sample portfolio, each announced once when it is loaded."""


@pytest.fixture(scope="module")
def shared_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One content service and one gateway for this module (each test makes its own items)."""
    stack = Stack(
        StackOptions(
            nats_url=nats_server.url,
            data_dir=tmp_path_factory.mktemp("content-admin"),
            replicas=ONLY_CONTENT_AND_GATEWAY,
            env=NO_RATE_LIMITS,
        )
    )
    with stack:
        stack.start_all()
        yield stack


@pytest.fixture
def admin(shared_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=shared_stack.gateway_url,
        headers={"X-Admin-Key": shared_stack.admin_key},
        timeout=15,
    ) as client:
        yield client


def create(admin: httpx.Client, **body: Any) -> dict[str, Any]:
    response = admin.post(ADMIN, json={"type": "project", "data": {"title": "Item"}, **body})
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()["data"]
    return item


def ops(stack: Stack, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m portfolio_content.ops`` with the content service's environment."""
    env = {**stack.env_for("content"), "PATH": os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "portfolio_content.ops", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Authentication


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ADMIN),
        ("POST", ADMIN),
        ("GET", f"{ADMIN}/content_abc"),
        ("PUT", f"{ADMIN}/content_abc"),
        ("DELETE", f"{ADMIN}/content_abc"),
        ("GET", f"{ADMIN}/content_abc/history"),
        ("POST", f"{ADMIN}/content_abc/restore"),
    ],
)
def test_every_admin_route_without_a_key_is_401(
    shared_stack: Stack, method: str, path: str
) -> None:
    response = httpx.request(method, f"{shared_stack.gateway_url}{path}", json={}, timeout=15)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "UNAUTHORIZED")


# Routes and statuses


def test_create_is_201_with_the_item(admin: httpx.Client) -> None:
    response = admin.post(ADMIN, json={"type": "project", "data": {"title": "My Cool Project!"}})
    body = response.json()["data"]
    assert (response.status_code, body["slug"], body["version"]) == (201, "my-cool-project", 1)


def test_create_with_invalid_body_is_400_with_fields(admin: httpx.Client) -> None:
    response = admin.post(ADMIN, json={"type": "Bad Type", "data": {}})
    error = response.json()["error"]
    assert (response.status_code, error["code"], set(error["fields"])) == (
        400,
        "VALIDATION_ERROR",
        {"type", "data"},
    )


def test_create_with_a_taken_slug_is_409(admin: httpx.Client) -> None:
    create(admin, slug="taken-slug")
    response = admin.post(ADMIN, json={"type": "project", "slug": "taken-slug", "data": {"a": 1}})
    assert (response.status_code, response.json()["error"]["message"]) == (
        409,
        "Slug 'taken-slug' already exists for type 'project'",
    )


def test_get_returns_the_item_with_its_version_etag(admin: httpx.Client) -> None:
    item = create(admin)
    response = admin.get(f"{ADMIN}/{item['id']}")
    assert (response.status_code, response.headers["ETag"]) == (200, '"v1"')


def test_get_of_a_malformed_id_is_400(admin: httpx.Client) -> None:
    response = admin.get(f"{ADMIN}/not-an-id")
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        "Invalid content ID",
    )


def test_get_of_an_unknown_id_is_404(admin: httpx.Client) -> None:
    response = admin.get(f"{ADMIN}/content_doesnotexist")
    assert response.status_code == 404


def test_list_filters_and_pages(admin: httpx.Client) -> None:
    item = create(admin, type="list-check")
    response = admin.get(ADMIN, params={"type": "list-check", "limit": "10"})
    assert [entry["id"] for entry in response.json()["data"]] == [item["id"]]


def test_list_with_an_invalid_boolean_is_400(admin: httpx.Client) -> None:
    response = admin.get(ADMIN, params={"includeDeleted": "maybe"})
    assert (response.status_code, list(response.json()["error"]["fields"])) == (
        400,
        ["includeDeleted"],
    )


def test_update_bumps_the_version(admin: httpx.Client) -> None:
    item = create(admin)
    response = admin.put(f"{ADMIN}/{item['id']}", json={"data": {"title": "New"}})
    assert (response.status_code, response.json()["data"]["version"]) == (200, 2)


def test_update_with_a_stale_if_match_is_412(admin: httpx.Client) -> None:
    item = create(admin)
    admin.put(f"{ADMIN}/{item['id']}", json={"data": {"title": "New"}})
    response = admin.put(
        f"{ADMIN}/{item['id']}", json={"data": {"title": "Late"}}, headers={"If-Match": '"v1"'}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (412, "PRECONDITION_FAILED")


def test_update_with_a_stale_body_version_is_409(admin: httpx.Client) -> None:
    item = create(admin)
    admin.put(f"{ADMIN}/{item['id']}", json={"data": {"title": "New"}})
    response = admin.put(f"{ADMIN}/{item['id']}", json={"data": {"t": 1}, "version": 1})
    assert response.status_code == 409


def test_concurrent_puts_with_the_same_version_let_exactly_one_win(admin: httpx.Client) -> None:
    item = create(admin)

    def put(number: int) -> int:
        response = admin.put(f"{ADMIN}/{item['id']}", json={"data": {"n": number}, "version": 1})
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(put, range(8)))
    assert statuses == [200] + [409] * 7


def test_history_lists_each_version_newest_first(admin: httpx.Client) -> None:
    item = create(admin)
    admin.put(f"{ADMIN}/{item['id']}", json={"data": {"title": "Second"}})
    response = admin.get(f"{ADMIN}/{item['id']}/history")
    assert [(entry["version"], entry["data"]) for entry in response.json()["data"]] == [
        (2, {"title": "Second"}),
        (1, {"title": "Item"}),
    ]


def test_restore_brings_back_an_earlier_version(admin: httpx.Client) -> None:
    item = create(admin)
    admin.put(f"{ADMIN}/{item['id']}", json={"data": {"title": "Second"}})
    response = admin.post(f"{ADMIN}/{item['id']}/restore", json={"version": 1})
    restored = response.json()["data"]
    assert (response.status_code, restored["data"], restored["version"]) == (
        200,
        {"title": "Item"},
        3,
    )


def test_restore_of_a_missing_version_is_404(admin: httpx.Client) -> None:
    item = create(admin)
    response = admin.post(f"{ADMIN}/{item['id']}/restore", json={"version": 7})
    assert (
        response.json()["error"]["message"] == f"Version with identifier '{item['id']}@7' not found"
    )


def test_soft_delete_keeps_the_item_for_admins(admin: httpx.Client) -> None:
    item = create(admin)
    response = admin.delete(f"{ADMIN}/{item['id']}")
    kept = admin.get(f"{ADMIN}/{item['id']}").json()["data"]
    assert (response.json(), kept["deletedAt"] is not None) == ({"success": True}, True)


def test_hard_delete_removes_the_item(admin: httpx.Client) -> None:
    item = create(admin)
    admin.delete(f"{ADMIN}/{item['id']}", params={"hard": "true"})
    assert admin.get(f"{ADMIN}/{item['id']}").status_code == 404


def test_published_item_is_public_until_soft_deleted(
    admin: httpx.Client, shared_stack: Stack
) -> None:
    item = create(admin, status="published", type="public-check")
    path = f"{shared_stack.gateway_url}/api/v1/content/public-check/{item['slug']}"
    before = httpx.get(path, timeout=15).status_code
    admin.delete(f"{ADMIN}/{item['id']}")
    assert (before, _eventually_status(path, 404)) == (200, 404)


def _eventually_status(url: str, expected: int, timeout_s: float = 10.0) -> int:
    import time

    deadline = time.monotonic() + timeout_s
    status = httpx.get(url, timeout=15).status_code
    while status != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        status = httpx.get(url, timeout=15).status_code
    return status


# Idempotency


def test_idempotent_retry_replays_the_first_response(admin: httpx.Client) -> None:
    headers = {"Idempotency-Key": "retry-key-1"}
    body = {"type": "project", "data": {"title": "Once only"}}
    first = admin.post(ADMIN, json=body, headers=headers)
    second = admin.post(ADMIN, json=body, headers=headers)
    assert (second.status_code, second.json(), second.headers.get("X-Idempotent-Replayed")) == (
        201,
        first.json(),
        "true",
    )


def test_reused_key_with_another_body_is_409(admin: httpx.Client) -> None:
    headers = {"Idempotency-Key": "retry-key-2"}
    admin.post(ADMIN, json={"type": "project", "data": {"title": "One"}}, headers=headers)
    response = admin.post(
        ADMIN, json={"type": "project", "data": {"title": "Two"}}, headers=headers
    )
    assert response.status_code == 409


# Operator commands against the running stack


def test_markdown_import_is_served_publicly(shared_stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "site" / "note"
    folder.mkdir(parents=True)
    (folder / "imported-note.md").write_text(
        "---\nstatus: published\ntitle: Imported note\n---\nHello from a file.\n"
    )
    result = ops(shared_stack, "import", str(tmp_path / "site"))
    url = f"{shared_stack.gateway_url}/api/v1/content/note/imported-note"
    assert (result.returncode, _eventually_status(url, 200)) == (0, 200), result.stderr


def test_backup_and_restore_round_trip_keeps_every_row(shared_stack: Stack, tmp_path: Path) -> None:
    backup = ops(shared_stack, "backup", str(tmp_path / "backup.sql"))
    restore = ops(
        shared_stack,
        "restore",
        str(tmp_path / "backup.sql"),
        "--database-url",
        f"file:{tmp_path / 'restored.db'}",
    )
    assert (backup.returncode, restore.returncode) == (0, 0), backup.stderr + restore.stderr
    assert _counts(tmp_path / "restored.db") == _counts_of_dump(tmp_path / "backup.sql")


def _counts(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(path)
    try:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("content", "content_history", "outbox", "idempotency_keys")
        }
    finally:
        connection.close()


def _counts_of_dump(path: Path) -> dict[str, int]:
    text = path.read_text()
    return {
        table: text.count(f'INSERT INTO "{table}" VALUES(')
        for table in ("content", "content_history", "outbox", "idempotency_keys")
    }


# Events through a NATS outage


async def _changes(nats_url: str, stack: Stack, count: int) -> list[ContentChanged]:
    client = await connect_nats(nats_url, name="events-reader")
    try:
        subscription = await client.jetstream().subscribe(
            stack.subjects.content_changed,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        events: list[ContentChanged] = []
        while len(events) < count:
            event = decode_event((await subscription.next_msg(timeout=30)).data)
            assert isinstance(event, ContentChanged)
            events.append(event)
        return events
    finally:
        await client.drain()


def test_update_made_while_nats_is_down_is_announced_after_it_returns(tmp_path: Path) -> None:
    server = start_nats(prefer_env=False)
    stack = Stack(
        StackOptions(
            nats_url=server.url,
            data_dir=tmp_path / "outage",
            replicas=ONLY_CONTENT_AND_GATEWAY,
            env=NO_RATE_LIMITS,
        )
    )
    try:
        with stack:
            stack.start_all()
            asyncio.run(_changes(server.url, stack, SAMPLE_ITEMS))
            folder = tmp_path / "site" / "note"
            folder.mkdir(parents=True)
            (folder / "outage.md").write_text("---\ntitle: Written during the outage\n---\n")

            server.stop_process_only()
            result = ops(stack, "import", str(tmp_path / "site"))
            server.restart()

            events = asyncio.run(_changes(server.url, stack, SAMPLE_ITEMS + 1))
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert events[-1].slug == "outage"
