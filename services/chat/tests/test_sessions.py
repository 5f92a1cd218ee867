"""Sessions: stored rows and messages (real SQLite file), cached history (real Redis, and
memory when Redis fails), expiry and the admin queries."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from portfolio_chat.sessions.database import ChatDatabase
from portfolio_chat.sessions.history import HistoryStore
from portfolio_chat.sessions.repository import NewMessage, SessionRepository
from portfolio_shared.contract import ServiceRequest
from portfolio_shared.errors import ValidationFailedError
from portfolio_shared.redis_link import RedisLink
from portfolio_shared.testing.servers import start_redis
from portfolio_shared.timeutil import utc_now

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from portfolio_chat.testing import ChatHarness
    from portfolio_shared.testing.fake_llm import FakeLlm
    from portfolio_shared.testing.servers import ManagedServer


@pytest.fixture
async def repository(tmp_path: Path) -> AsyncIterator[SessionRepository]:
    database = ChatDatabase(f"file:{tmp_path / 'nested' / 'chat.db'}")
    await database.open()
    yield SessionRepository(database, max_age_s=3600)
    await database.close()


async def new_session(
    repository: SessionRepository, visitor: str = "v1", **kwargs: Any
) -> dict[str, Any]:
    return await repository.create(
        visitor_id=visitor,
        ip_hash="0123456789abcdef",
        user_agent="test",
        now=kwargs.get("now", utc_now()),
    )


async def test_session_is_reusable_until_it_expires(repository: SessionRepository) -> None:
    created = await new_session(repository)

    now = utc_now()
    found = await repository.find_reusable("v1", now)
    gone = await repository.find_reusable("v1", now + timedelta(hours=2))

    assert found is not None
    assert found["id"] == created["id"]
    assert gone is None


async def test_ended_session_is_not_reused(repository: SessionRepository) -> None:
    created = await new_session(repository)

    await repository.end(created["id"], utc_now())

    assert await repository.find_reusable("v1", utc_now()) is None


async def test_messages_keep_their_order_and_count(repository: SessionRepository) -> None:
    session = await new_session(repository)
    now = utc_now()

    await repository.add_messages(session["id"], [NewMessage("user", "q1")], now)
    await repository.add_messages(session["id"], [NewMessage("assistant", "a1", 5)], now)
    await repository.add_messages(session["id"], [NewMessage("user", "q2")], now)

    stored = await repository.get(session["id"])
    assert stored is not None
    assert stored["message_count"] == 3
    assert [row["content"] for row in await repository.messages(session["id"])] == [
        "q1",
        "a1",
        "q2",
    ]
    assert [
        row["content"] for row in await repository.messages(session["id"], limit=2, newest=True)
    ] == ["a1", "q2"]


async def test_expiry_sweep_marks_overdue_sessions(repository: SessionRepository) -> None:
    old = await new_session(repository, now=utc_now() - timedelta(hours=2))
    fresh = await new_session(repository, "v2")

    changed = await repository.expire_overdue()

    statuses = {
        row["id"]: row["status"]
        for row in await repository.list_sessions(status=None, limit=10, offset=0)
    }
    assert changed == 1
    assert statuses == {old["id"]: "expired", fresh["id"]: "active"}


async def test_history_in_redis_is_capped_and_expires(
    redis_server: ManagedServer, redis_prefix: str
) -> None:
    link = RedisLink(redis_server.url, component="chat_sessions", key_prefix=redis_prefix)
    store = HistoryStore(link, max_messages=3, idle_ttl_s=60)
    try:
        await store.append("sess_a", [{"role": "user", "content": str(n)} for n in range(5)])

        loaded = await store.load("sess_a")
        client = link.client
        assert client is not None
        ttl = await client.ttl(f"{redis_prefix}session:sess_a")
    finally:
        await link.close()

    assert [message["content"] for message in loaded or []] == ["2", "3", "4"]
    assert 0 < ttl <= 60


async def test_history_falls_back_to_memory_when_redis_stops() -> None:
    server = start_redis(prefer_env=False)
    link = RedisLink(server.url, component="chat_sessions")
    store = HistoryStore(link, max_messages=10, idle_ttl_s=60)
    try:
        server.stop()
        await store.append("sess_b", [{"role": "user", "content": "kept"}])
        loaded = await store.load("sess_b")
    finally:
        await link.close()

    assert link.up is False
    assert loaded == [{"role": "user", "content": "kept"}]


async def test_history_without_redis_lives_in_memory() -> None:
    store = HistoryStore(RedisLink(None, component="chat_sessions"), max_messages=2, idle_ttl_s=60)

    await store.append(
        "sess_c", [{"role": "user", "content": "1"}, {"role": "user", "content": "2"}]
    )
    await store.append("sess_c", [{"role": "assistant", "content": "3"}])

    assert [m["content"] for m in await store.load("sess_c") or []] == ["2", "3"]


async def test_history_is_rebuilt_from_the_database_after_a_miss(
    chat: ChatHarness, fake_llm: FakeLlm
) -> None:
    first = await chat.send({"message": "Remember me", "visitorId": "v1"})
    await chat.service.history.delete(first["sessionId"])

    await chat.send({"message": "Still there?", "visitorId": "v1"})

    sent = [message["content"] for message in fake_llm.requests[-1]["messages"][1:]]
    assert sent == ["Remember me", "Hello from the fake model.", "Still there?"]


async def test_turn_cap_limits_history_sent_to_the_provider(
    start_chat: Any, fake_llm: FakeLlm
) -> None:
    harness = await start_chat(llm_base_url=fake_llm.base_url, chat_history_max_turns=1)
    for number in range(3):
        await harness.send({"message": f"q{number}", "visitorId": "v1"})

    sent = [message["content"] for message in fake_llm.requests[-1]["messages"][1:]]
    assert sent == ["q1", "Hello from the fake model.", "q2"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            {"status": "open"},
            "status",
            "Invalid enum value. Expected 'active' | 'ended' | 'expired', received 'open'",
        ),
        ({"limit": "0"}, "limit", "Number must be greater than or equal to 1"),
        ({"limit": "101"}, "limit", "Number must be less than or equal to 100"),
        ({"limit": "abc"}, "limit", "Expected number, received nan"),
        ({"limit": "1.5"}, "limit", "Expected integer, received float"),
        ({"offset": "-1"}, "offset", "Number must be greater than or equal to 0"),
    ],
)
async def test_admin_list_rejects_bad_queries(
    chat: ChatHarness, query: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        await chat.ask(chat.subjects.chat_admin_sessions_list, ServiceRequest(query=query))

    assert caught.value.fields == {field: [message]}


async def test_admin_list_pages_by_last_activity(chat: ChatHarness) -> None:
    first = await chat.send({"message": "a", "visitorId": "v1"})
    second = await chat.send({"message": "b", "visitorId": "v2"})

    page = await chat.ask(
        chat.subjects.chat_admin_sessions_list, ServiceRequest(query={"limit": "1", "offset": "1"})
    )

    assert [session["id"] for session in page] == [first["sessionId"]]
    assert second["sessionId"] != first["sessionId"]


async def test_session_view_has_contract_fields(chat: ChatHarness) -> None:
    reply = await chat.send(
        {"message": "a", "visitorId": "v1"}, client_hash="abcdef0123456789", user_agent="ua/1"
    )

    detail = await chat.ask(
        chat.subjects.chat_admin_sessions_get, ServiceRequest(params={"id": reply["sessionId"]})
    )

    assert list(detail) == [
        "id",
        "visitorId",
        "ipHash",
        "userAgent",
        "messageCount",
        "status",
        "createdAt",
        "lastActiveAt",
        "expiresAt",
        "messages",
    ]
    assert (detail["ipHash"], detail["userAgent"], detail["messageCount"]) == (
        "abcdef0123456789",
        "ua/1",
        2,
    )
    assert list(detail["messages"][1]) == [
        "id",
        "sessionId",
        "role",
        "content",
        "tokensUsed",
        "model",
        "createdAt",
    ]
