"""The database interface: qmark compilation, transactions, retries of busy errors, 503 when
the database stays locked, and the readiness check."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from typing import TYPE_CHECKING

import libsql_client
import pytest
import sqlalchemy as sa
from portfolio_content.app import ContentInstance
from portfolio_content.content.service import ContentService, WriteContext
from portfolio_content.content.validation import validate_create
from portfolio_content.db import migrate
from portfolio_content.db.database import (
    DATABASE_ERRORS,
    Database,
    DatabaseUnavailableError,
    RetryPolicy,
    UniqueViolationError,
    _classify,
    compile_statement,
)
from portfolio_content.db.schema import content
from portfolio_content.settings import ContentSettings
from portfolio_shared.errors import ErrorCode

from .conftest import eventually

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from portfolio_content.db.database import Transaction

pytestmark = pytest.mark.timeout(60)

BODY = {"type": "project", "data": {"title": "A"}}
CONTEXT = WriteContext(changed_by="admin")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"file:{tmp_path / 'content.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url, retry=RetryPolicy(attempts=4, base_delay_s=0.01)) as db:
        yield db


@pytest.fixture
def exclusive_lock(database_url: str) -> Iterator[sqlite3.Connection]:
    """Another process's writer holding the database's write lock."""
    connection = sqlite3.connect(database_url.removeprefix("file:"), isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


def busy_errors() -> float:
    value: float = DATABASE_ERRORS.labels("busy")._value.get()
    return value


def test_statements_compile_to_qmark_with_positional_arguments() -> None:
    sql, args = compile_statement(
        sa.select(content.c.id).where(content.c.type == "project", content.c.version > 2)
    )
    assert (sql.count("?"), args) == (2, ["project", 2])


async def test_transaction_commits_all_statements(database: Database) -> None:
    service = ContentService(database)
    await service.create(validate_create(BODY), CONTEXT)
    rows = await database.fetch_all("SELECT count(*) AS n FROM content_history")
    assert rows == [{"n": 1}]


async def test_failing_work_rolls_back_everything(database: Database) -> None:
    async def work(transaction: Transaction) -> None:
        await transaction.execute(
            sa.insert(content).values(
                id="content_x", type="t", slug="s", data="{}", created_at="", updated_at=""
            )
        )
        raise RuntimeError("stop half way")

    with pytest.raises(RuntimeError):
        await database.transaction(work)
    assert await database.fetch_all("SELECT id FROM content") == []


async def test_write_against_a_held_lock_is_503_after_bounded_retries(
    database: Database, exclusive_lock: sqlite3.Connection
) -> None:
    with pytest.raises(DatabaseUnavailableError, match="database is unavailable") as error:
        await ContentService(database).create(validate_create(BODY), CONTEXT)
    assert error.value.code is ErrorCode.SERVICE_UNAVAILABLE


async def test_each_busy_retry_is_counted(
    database: Database, exclusive_lock: sqlite3.Connection
) -> None:
    before = busy_errors()
    with pytest.raises(DatabaseUnavailableError):
        await ContentService(database).create(validate_create(BODY), CONTEXT)
    assert busy_errors() - before == database.retry.attempts


async def test_nothing_is_half_written_when_the_database_stays_locked(
    database: Database, exclusive_lock: sqlite3.Connection
) -> None:
    with pytest.raises(DatabaseUnavailableError):
        await ContentService(database).create(validate_create(BODY), CONTEXT)
    exclusive_lock.execute("ROLLBACK")
    counts = await database.fetch_all(
        "SELECT (SELECT count(*) FROM content) AS items, (SELECT count(*) FROM outbox) AS events"
    )
    assert counts == [{"items": 0, "events": 0}]


async def test_write_succeeds_once_the_lock_is_released(
    database_url: str, exclusive_lock: sqlite3.Connection
) -> None:
    patient = RetryPolicy(attempts=50, base_delay_s=0.01, max_delay_s=0.05)
    async with Database(database_url, retry=patient) as database:
        before = busy_errors()
        write = asyncio.create_task(ContentService(database).create(validate_create(BODY), CONTEXT))

        async def retried() -> bool:
            return busy_errors() > before

        await eventually(retried, timeout_s=10)
        exclusive_lock.execute("ROLLBACK")
        outcome = await write
    assert outcome.reply.status == 201


async def test_ping_answers_on_a_healthy_database(database: Database) -> None:
    await database.ping()


async def test_unreachable_server_fails_the_ping() -> None:
    database = Database("ws://127.0.0.1:9", retry=RetryPolicy(attempts=1))
    with pytest.raises(Exception):  # noqa: B017, PT011 - any driver failure fails the check
        await database.ping()


def test_retry_policy_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="At least one attempt"):
        RetryPolicy(attempts=0)


async def test_readiness_check_reports_a_missing_database_folder(
    instance: ContentInstance, settings: ContentSettings
) -> None:
    healthy = await instance.check_database()
    shutil.rmtree(settings.data_dir)
    broken = await instance.check_database()
    assert (healthy.status, broken.status, broken.critical) == ("ok", "error", True)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (libsql_client.LibsqlError("database is locked", "SQLITE_BUSY"), "busy"),
        (libsql_client.LibsqlError("snapshot", "SQLITE_BUSY_SNAPSHOT"), "busy"),
        (libsql_client.LibsqlError("Stream was closed", "STREAM_CLOSED"), "connection"),
        (libsql_client.LibsqlError("stream expired", "STREAM_EXPIRED"), "connection"),
        (libsql_client.LibsqlError("closed", "HRANA_WEBSOCKET_ERROR"), "connection"),
        (ConnectionResetError("reset by peer"), "connection"),
    ],
)
def test_transient_driver_errors_are_classified_for_retry(
    error: BaseException, reason: str
) -> None:
    classified = _classify(error)
    assert getattr(classified, "reason", None) == reason


def test_unique_constraint_failure_is_a_unique_violation() -> None:
    error = libsql_client.LibsqlError(
        "UNIQUE constraint failed: content.type, content.slug", "SQLITE_CONSTRAINT_UNIQUE"
    )
    assert isinstance(_classify(error), UniqueViolationError)


def test_other_driver_errors_are_not_retried() -> None:
    error = libsql_client.LibsqlError("no such table: nope", "SQLITE_ERROR")
    assert _classify(error) is error
