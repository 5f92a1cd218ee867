"""The chat database under contention from another connection to the same SQLite file,
as when two chat replicas share one file: WAL journaling, and retries of a held write
lock within a time budget."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import pytest
from portfolio_chat.sessions.database import ChatDatabase
from portfolio_chat.sessions.repository import NewMessage, SessionRepository
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.timeutil import utc_now
from prometheus_client import REGISTRY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

LOCKED_ATTEMPTS = 12
"""Transient errors the writer meets before the lock holder lets go (more than a short
fixed retry schedule would survive)."""

WAIT_LIMIT_S = 30.0
"""Deadline of the lock holder's wait for the writer's retries (a safety net only)."""


def transient_errors() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "chat_database_errors"
        for sample in metric.samples
        if sample.name == "chat_database_errors_total"
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "chat.db"


@pytest.fixture
async def repository(path: Path) -> AsyncIterator[SessionRepository]:
    database = ChatDatabase(f"file:{path}", busy_budget_s=WAIT_LIMIT_S)
    await database.open()
    yield SessionRepository(database, max_age_s=3600)
    await database.close()


@pytest.fixture
def other_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection to the file, as another replica would hold."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    yield connection
    connection.close()


async def new_session_id(repository: SessionRepository) -> str:
    session = await repository.create(
        visitor_id="v1", ip_hash="0123456789abcdef", user_agent="test", now=utc_now()
    )
    return str(session["id"])


async def test_file_database_uses_wal_journaling(
    repository: SessionRepository, other_connection: sqlite3.Connection
) -> None:
    (mode,) = other_connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


async def test_write_ignores_open_read(
    repository: SessionRepository, other_connection: sqlite3.Connection
) -> None:
    session_id = await new_session_id(repository)
    other_connection.execute("BEGIN")
    other_connection.execute("SELECT count(*) FROM chat_messages").fetchone()
    before = transient_errors()

    await repository.add_messages(session_id, [NewMessage("user", "hello")], utc_now())

    other_connection.execute("COMMIT")
    assert transient_errors() == before


async def test_write_waits_out_held_lock(
    repository: SessionRepository, other_connection: sqlite3.Connection
) -> None:
    session_id = await new_session_id(repository)
    locked = threading.Event()
    retries_needed = transient_errors() + LOCKED_ATTEMPTS

    def hold_lock_until_retried() -> None:
        other_connection.execute("BEGIN IMMEDIATE")
        locked.set()
        deadline = time.monotonic() + WAIT_LIMIT_S
        while transient_errors() < retries_needed and time.monotonic() < deadline:
            time.sleep(0.005)
        other_connection.execute("COMMIT")

    holder = threading.Thread(target=hold_lock_until_retried)
    holder.start()
    await asyncio.to_thread(locked.wait)
    try:
        await repository.add_messages(session_id, [NewMessage("user", "hello")], utc_now())
    finally:
        await asyncio.to_thread(holder.join)

    assert transient_errors() >= retries_needed
    messages = await repository.messages(session_id)
    assert [message["content"] for message in messages] == ["hello"]


async def test_lock_past_budget_gives_503(path: Path, other_connection: sqlite3.Connection) -> None:
    database = ChatDatabase(f"file:{path}", busy_budget_s=0.2)
    await database.open()
    repository = SessionRepository(database, max_age_s=3600)
    session_id = await new_session_id(repository)
    other_connection.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ServiceUnavailableError, match="chat database is unavailable"):
            await repository.add_messages(session_id, [NewMessage("user", "hello")], utc_now())
    finally:
        other_connection.execute("ROLLBACK")

    assert await repository.messages(session_id) == []
    await database.close()
