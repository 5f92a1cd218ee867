"""Idempotency keys on admin writes: replay, mismatch, scope, restarts, concurrent duplicates."""

from __future__ import annotations

import asyncio

import pytest
from portfolio_content.app import ContentInstance
from portfolio_content.content.service import WriteContext
from portfolio_content.content.validation import validate_create
from portfolio_content.idempotency.store import IdempotencyClaim, request_fingerprint
from portfolio_content.settings import ContentSettings
from portfolio_shared.contract import HttpReply
from portfolio_shared.errors import ConflictError, ValidationFailedError

from .conftest import ContentClient

pytestmark = pytest.mark.timeout(60)

BODY = {"type": "project", "data": {"title": "Once"}}


async def test_retry_with_same_key_and_body_replays_the_first_reply(
    content: ContentClient,
) -> None:
    first = await content.http(
        content.subjects.content_admin_create, body=BODY, idempotency_key="k1"
    )
    second = await content.http(
        content.subjects.content_admin_create, body=BODY, idempotency_key="k1"
    )
    assert (second.status, second.body, second.replayed) == (201, first.body, True)


async def test_first_reply_is_not_marked_replayed(content: ContentClient) -> None:
    first = await content.http(
        content.subjects.content_admin_create, body=BODY, idempotency_key="k"
    )
    assert first.replayed is False


async def test_replay_makes_no_second_change(content: ContentClient) -> None:
    for _ in range(3):
        await content.call(content.subjects.content_admin_create, body=BODY, idempotency_key="k2")
    listed = await content.http(content.subjects.content_admin_list)
    assert len(listed.body["data"]) == 1


async def test_same_key_with_a_different_body_is_409(content: ContentClient) -> None:
    await content.call(content.subjects.content_admin_create, body=BODY, idempotency_key="k3")
    with pytest.raises(ConflictError, match="Idempotency-Key 'k3' was already used"):
        await content.call(
            content.subjects.content_admin_create,
            body={"type": "project", "data": {"title": "Other"}},
            idempotency_key="k3",
        )


async def test_update_replay_does_not_bump_the_version_again(content: ContentClient) -> None:
    item = await content.create(BODY)
    for _ in range(2):
        await content.update(item["id"], {"data": {"title": "Twice"}}, idempotency_key="u1")
    assert (await content.get(item["id"]))["version"] == 2


async def test_key_is_scoped_by_operation_and_item(content: ContentClient) -> None:
    first = await content.create({"type": "project", "slug": "a", "data": {"x": 1}})
    second = await content.create({"type": "project", "slug": "b", "data": {"x": 1}})
    await content.update(first["id"], {"data": {"x": 2}}, idempotency_key="same")
    reply = await content.update(second["id"], {"data": {"x": 2}}, idempotency_key="same")
    assert (reply.replayed, reply.body["data"]["version"]) == (False, 2)


async def test_delete_replay_answers_success_again(content: ContentClient) -> None:
    item = await content.create(BODY)
    replies = [
        await content.http(
            content.subjects.content_admin_delete, params={"id": item["id"]}, idempotency_key="d1"
        )
        for _ in range(2)
    ]
    assert [(reply.body, reply.replayed) for reply in replies] == [
        ({"success": True}, False),
        ({"success": True}, True),
    ]


async def test_restore_replay_restores_once(content: ContentClient) -> None:
    item = await content.create(BODY)
    await content.update(item["id"], {"data": {"title": "Changed"}})
    for _ in range(2):
        await content.call(
            content.subjects.content_admin_restore,
            params={"id": item["id"]},
            body={"version": 1},
            idempotency_key="r1",
        )
    assert (await content.get(item["id"]))["version"] == 3


async def test_failed_request_is_not_stored(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError):
        await content.call(
            content.subjects.content_admin_create, body={"type": "project"}, idempotency_key="f1"
        )
    reply = await content.http(
        content.subjects.content_admin_create, body={"type": "project"} | BODY, idempotency_key="f1"
    )
    assert (reply.status, reply.replayed) == (201, False)


async def test_stored_reply_survives_a_restart(settings: ContentSettings) -> None:
    async with ContentInstance(settings) as first:
        original = await first.service.create(validate_create(BODY), _context("restart"))
    async with ContentInstance(settings) as second:
        replay = await second.service.create(validate_create(BODY), _context("restart"))
    assert (replay.reply.replayed, replay.reply.body) == (True, original.reply.body)


async def test_concurrent_duplicates_execute_once(content: ContentClient) -> None:
    replies = await asyncio.gather(
        *(
            content.http(content.subjects.content_admin_create, body=BODY, idempotency_key="c1")
            for _ in range(10)
        )
    )
    assert len({reply.body["data"]["id"] for reply in replies}) == 1
    assert sum(not reply.replayed for reply in replies) == 1


def _context(key: str) -> WriteContext:
    return WriteContext(
        changed_by="admin",
        idempotency=IdempotencyClaim(
            scope="create", key=key, fingerprint=request_fingerprint(BODY)
        ),
    )


def test_http_reply_round_trips_through_plain_data() -> None:
    reply = HttpReply(status=201, body={"data": {"a": 1}}, replayed=True)
    assert HttpReply.from_data(reply.to_data()) == reply
