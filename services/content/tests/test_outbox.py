"""Outbox events: one ContentChanged per committed change, delivered to JetStream,
and held back (not lost) while NATS is down."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from nats.js.api import DeliverPolicy
from portfolio_content.app import ContentInstance
from portfolio_content.content.service import WriteContext
from portfolio_content.content.validation import validate_create, validate_update
from portfolio_content.outbox.store import count_pending
from portfolio_shared.contract import ChangeKind, ContentChanged, Subjects
from portfolio_shared.contract.events import decode_event
from portfolio_shared.nats_client import connect_nats
from portfolio_shared.testing.servers import start_nats

from .conftest import ContentClient, eventually, make_settings

if TYPE_CHECKING:
    from pathlib import Path

    from portfolio_shared.testing.servers import ManagedServer

pytestmark = pytest.mark.timeout(60)

CONTEXT = WriteContext(changed_by="admin")
DEADLINE_S = 20.0


async def read_changes(nats_url: str, namespace: str, count: int) -> list[ContentChanged]:
    """The first ``count`` content events of the namespace's stream, waiting up to the deadline."""
    subjects = Subjects(namespace)
    client = await connect_nats(nats_url, name="events-reader")
    try:
        js = client.jetstream()
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        while True:
            try:
                subscription = await js.subscribe(
                    subjects.content_changed,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.ALL,
                )
                break
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        events: list[ContentChanged] = []
        while len(events) < count:
            left = deadline - asyncio.get_running_loop().time()
            message = await subscription.next_msg(timeout=max(left, 0.01))
            event = decode_event(message.data)
            assert isinstance(event, ContentChanged)
            events.append(event)
        return events
    finally:
        await client.drain()


async def test_create_publishes_a_created_event(
    content: ContentClient, nats_server: ManagedServer, namespace: str
) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}, "status": "published"})
    [event] = await read_changes(nats_server.url, namespace, 1)
    assert (event.content_id, event.change, event.version, event.slug, event.status) == (
        item["id"],
        ChangeKind.CREATED,
        1,
        "a",
        "published",
    )


async def test_update_event_names_the_previous_slug_and_status(
    content: ContentClient, nats_server: ManagedServer, namespace: str
) -> None:
    item = await content.create({"type": "project", "slug": "old", "data": {"a": 1}})
    await content.update(item["id"], {"slug": "new", "status": "published"})
    event = (await read_changes(nats_server.url, namespace, 2))[1]
    assert (event.change, event.slug, event.previous_slug, event.previous_status) == (
        ChangeKind.UPDATED,
        "new",
        "old",
        "draft",
    )


async def test_every_change_kind_is_announced_in_order(
    content: ContentClient, nats_server: ManagedServer, namespace: str
) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.update(item["id"], {"data": {"title": "B"}})
    await content.call(
        content.subjects.content_admin_restore, params={"id": item["id"]}, body={"version": 1}
    )
    await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})
    await content.call(
        content.subjects.content_admin_delete, params={"id": item["id"]}, query={"hard": "true"}
    )
    events = await read_changes(nats_server.url, namespace, 5)
    assert [(event.change, event.version) for event in events] == [
        (ChangeKind.CREATED, 1),
        (ChangeKind.UPDATED, 2),
        (ChangeKind.RESTORED, 3),
        (ChangeKind.DELETED, 4),
        (ChangeKind.HARD_DELETED, 4),
    ]


async def test_replayed_request_publishes_no_second_event(
    content: ContentClient, instance: ContentInstance
) -> None:
    for _ in range(2):
        await content.call(
            content.subjects.content_admin_create,
            body={"type": "project", "data": {"title": "A"}},
            idempotency_key="once",
        )
    rows = await instance.database.fetch_all("SELECT event_id FROM outbox")
    assert len(rows) == 1


async def test_event_written_while_nats_is_down_arrives_after_it_returns(
    tmp_path: Path, namespace: str
) -> None:
    server = start_nats(prefer_env=False)
    try:
        settings = make_settings(server.url, namespace, tmp_path)
        async with ContentInstance(settings) as instance:
            created = await instance.service.create(
                validate_create({"type": "project", "data": {"title": "A"}}), CONTEXT
            )
            await read_changes(server.url, namespace, 1)

            server.stop_process_only()
            await instance.service.update(
                str(created.content_id), validate_update({"data": {"title": "B"}}), CONTEXT
            )
            pending_during_outage = await count_pending(instance.database)

            server.restart()
            events = await read_changes(server.url, namespace, 2)
    finally:
        server.stop()
    assert pending_during_outage == 1
    assert (events[1].change, events[1].version) == (ChangeKind.UPDATED, 2)


async def test_relay_marks_delivered_events_sent(
    content: ContentClient, instance: ContentInstance, nats_server: ManagedServer, namespace: str
) -> None:
    await content.create({"type": "project", "data": {"title": "A"}})
    await read_changes(nats_server.url, namespace, 1)

    async def all_sent() -> bool:
        return await count_pending(instance.database) == 0

    assert await eventually(all_sent, timeout_s=DEADLINE_S)


async def test_shutdown_publishes_events_still_pending(
    nats_server: ManagedServer, namespace: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_server.url, namespace, tmp_path)
    async with ContentInstance(settings) as instance:
        # With the background relay stopped, only the shutdown flush can
        # publish this change.
        await instance.relay.stop()
        created = await instance.service.create(
            validate_create({"type": "project", "data": {"title": "Late"}}), CONTEXT
        )
        pending_before_shutdown = await count_pending(instance.database)

    [event] = await read_changes(nats_server.url, namespace, 1)
    assert pending_before_shutdown == 1
    assert (event.content_id, event.change) == (str(created.content_id), ChangeKind.CREATED)
