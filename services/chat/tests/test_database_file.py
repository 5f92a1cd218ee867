"""Statements on a ``file:`` chat database, run on one persistent sqlite3 connection.

They see commits made by other connections and processes, hold no snapshot between calls and
keep batches atomic. They return what libsql-client returns and raise its errors, which keep
their retry rules."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import libsql_client
import pytest
from portfolio_chat.sessions import database as database_module
from portfolio_chat.sessions.database import ChatDatabase
from portfolio_chat.sessions.repository import NewMessage, SessionRepository
from portfolio_chat.sessions.schema import chat_messages, chat_sessions
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.sql import sqlite_file
from portfolio_shared.sql.statements import compile_statement
from portfolio_shared.timeutil import utc_now
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select, text, update

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from sqlalchemy.sql.expression import ClauseElement

pytestmark = pytest.mark.timeout(60)

MESSAGE_COUNT = select(func.count().label("messages")).select_from(chat_messages)

INSERT_SESSION_SQL = (
    "INSERT INTO chat_sessions (id, visitor_id, ip_hash, user_agent, message_count, status, "
    "created_at, last_active_at, expires_at) "
    "VALUES (?, 'v1', 'hash', NULL, 0, 'active', '2025-03-01', '2025-03-01', '2999-01-01')"
)
"""An insert of one active session with the given id, written outside ``ChatDatabase``."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "chat.db"


@pytest.fixture
async def database(path: Path) -> AsyncIterator[ChatDatabase]:
    database = ChatDatabase(f"file:{path}", busy_budget_s=0.2)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def file_connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """The connection of every statement run on the file, in order."""
    seen: list[sqlite3.Connection] = []
    execute = sqlite_file.execute_on_file

    def recording(
        connection: sqlite3.Connection, sql: str, args: Sequence[Any]
    ) -> libsql_client.ResultSet:
        seen.append(connection)
        return execute(connection, sql, args)

    monkeypatch.setattr(database_module, "execute_on_file", recording)
    return seen


def transient_errors(code: str) -> float:
    value = REGISTRY.get_sample_value("chat_database_errors_total", {"code": code})
    return value or 0.0


def insert_session(path: Path, session_id: str) -> None:
    """Insert one session through a separate connection and commit it."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute(INSERT_SESSION_SQL, (session_id,))
    finally:
        connection.close()


def insert_session_in_another_process(
    path: Path, session_id: str
) -> subprocess.CompletedProcess[str]:
    """Insert one session from a Python process of its own and commit it."""
    script = (
        "import sqlite3, sys\n"
        "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "connection.execute(sys.argv[2], (sys.argv[3],))\n"
        "connection.close()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(path), INSERT_SESSION_SQL, session_id],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def session_message(session_id: str, message_id: str) -> ClauseElement:
    return insert(chat_messages).values(
        id=message_id,
        session_id=session_id,
        role="user",
        content="hello",
        tokens_used=None,
        model=None,
        created_at="2025-03-01T10:00:00.000Z",
        seq=1,
    )


async def count_messages(database: ChatDatabase) -> int:
    (row,) = await database.fetch_all(MESSAGE_COUNT)
    return int(row["messages"])


async def session_ids(database: ChatDatabase) -> list[str]:
    rows = await database.fetch_all(select(chat_sessions.c.id).order_by(chat_sessions.c.id))
    return [row["id"] for row in rows]


async def test_statements_share_one_connection(
    database: ChatDatabase, file_connections: list[sqlite3.Connection]
) -> None:
    repository = SessionRepository(database, max_age_s=3600)
    session = await repository.create(
        visitor_id="v1", ip_hash="hash", user_agent=None, now=utc_now()
    )
    await repository.add_messages(session["id"], [NewMessage("user", "hello")], utc_now())
    await repository.messages(session["id"])

    assert len(file_connections) >= 4
    assert all(connection is file_connections[0] for connection in file_connections)


async def test_read_sees_a_commit_from_another_connection(
    database: ChatDatabase, path: Path
) -> None:
    before = await session_ids(database)

    insert_session(path, "sess_other")

    assert (before, await session_ids(database)) == ([], ["sess_other"])


async def test_read_sees_a_commit_from_another_process(database: ChatDatabase, path: Path) -> None:
    before = await session_ids(database)

    written = insert_session_in_another_process(path, "sess_process")

    assert written.returncode == 0, written.stderr
    assert (before, await session_ids(database)) == ([], ["sess_process"])


async def test_other_connection_sees_a_committed_batch(database: ChatDatabase, path: Path) -> None:
    insert_session(path, "sess_a")

    await database.batch([session_message("sess_a", "msg_1"), session_message("sess_a", "msg_2")])

    other = sqlite3.connect(path, isolation_level=None)
    try:
        (count,) = other.execute("SELECT count(*) FROM chat_messages").fetchone()
    finally:
        other.close()
    assert count == 2


async def test_statement_holds_no_snapshot_between_calls(
    database: ChatDatabase, path: Path
) -> None:
    insert_session(path, "sess_first")
    await session_ids(database)
    insert_session(path, "sess_second")

    checkpointer = sqlite3.connect(path, isolation_level=None)
    try:
        busy, _, _ = checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        checkpointer.close()

    assert busy == 0


async def test_failed_batch_writes_nothing(database: ChatDatabase, path: Path) -> None:
    insert_session(path, "sess_a")

    with pytest.raises(libsql_client.LibsqlError, match="UNIQUE constraint failed") as error:
        await database.batch(
            [session_message("sess_a", "msg_1"), session_message("sess_a", "msg_1")]
        )

    assert error.value.code == "SQLITE_CONSTRAINT_PRIMARYKEY"
    assert await count_messages(database) == 0
    await database.batch([session_message("sess_a", "msg_2"), session_message("sess_a", "msg_3")])
    assert await count_messages(database) == 2


async def test_busy_commit_is_rolled_back_and_retried(
    database: ChatDatabase,
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    insert_session(path, "sess_a")
    execute = sqlite_file.execute_on_file
    commits: list[bool] = []

    def busy_first_commit(
        connection: sqlite3.Connection, sql: str, args: Sequence[Any]
    ) -> libsql_client.ResultSet:
        if sql == "COMMIT" and not commits:
            commits.append(False)
            raise libsql_client.LibsqlError("database is locked", "SQLITE_BUSY")
        return execute(connection, sql, args)

    monkeypatch.setattr(database_module, "execute_on_file", busy_first_commit)
    before = transient_errors("SQLITE_BUSY")

    await database.batch([session_message("sess_a", "msg_1"), session_message("sess_a", "msg_2")])

    assert transient_errors("SQLITE_BUSY") - before == 1
    assert await count_messages(database) == 2


async def test_locked_write_is_retried_then_503(database: ChatDatabase, path: Path) -> None:
    insert_session(path, "sess_a")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    before = transient_errors("SQLITE_BUSY")
    try:
        with pytest.raises(ServiceUnavailableError, match="chat database is unavailable"):
            await database.execute(update(chat_sessions).values(status="ended"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert transient_errors("SQLITE_BUSY") - before >= 2
    rows = await database.fetch_all(select(chat_sessions.c.status))
    assert rows == [{"status": "active"}]


async def test_sql_error_is_not_retried(database: ChatDatabase) -> None:
    before = transient_errors("SQLITE_ERROR")

    with pytest.raises(libsql_client.LibsqlError, match="no such column") as error:
        await database.execute(text("SELECT missing_column FROM chat_sessions"))

    assert error.value.code == "SQLITE_ERROR"
    assert transient_errors("SQLITE_ERROR") == before


class RollbackFails(sqlite3.Connection):
    """A connection whose rollback fails, as on an I/O error."""

    def rollback(self) -> None:
        raise sqlite3.OperationalError("disk I/O error")


async def test_failed_rollback_replaces_the_connection(
    path: Path, file_connections: list[sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    def connect_failing_rollback(file_path: Path) -> sqlite3.Connection:
        return sqlite3.connect(
            file_path,
            isolation_level=None,
            check_same_thread=False,
            timeout=0,
            factory=RollbackFails,
        )

    monkeypatch.setattr(database_module, "connect_file", connect_failing_rollback)
    database = ChatDatabase(f"file:{path}", busy_budget_s=0.2)
    await database.open()
    insert_session(path, "sess_a")
    try:
        with pytest.raises(libsql_client.LibsqlError, match="UNIQUE constraint failed"):
            await database.batch(
                [session_message("sess_a", "msg_1"), session_message("sess_a", "msg_1")]
            )
        failed = file_connections[-1]

        assert await count_messages(database) == 0
        assert file_connections[-1] is not failed
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            failed.execute("SELECT 1")
    finally:
        await database.close()


async def test_results_match_libsql_client(database: ChatDatabase, path: Path) -> None:
    insert_session(path, "sess_a")
    insert_session(path, "sess_b")
    client = libsql_client.create_client(f"file:{path}")
    statement = update(chat_sessions).values(message_count=chat_sessions.c.message_count + 1)
    query = select(chat_sessions).order_by(chat_sessions.c.id)
    try:
        from_client = [await client.execute(*compile_statement(query))]
        from_client.append(await client.execute(*compile_statement(statement)))
        from_client.append(await client.execute(*compile_statement(query)))
    finally:
        await client.close()
    await database.execute(update(chat_sessions).values(message_count=0))

    from_file = [
        await database.execute(query),
        await database.execute(statement),
        await database.execute(query),
    ]

    for mine, theirs in zip(from_file, from_client, strict=True):
        assert mine.columns == theirs.columns
        assert [tuple(row) for row in mine.rows] == [tuple(row) for row in theirs.rows]
        assert [row.asdict() for row in mine.rows] == [row.asdict() for row in theirs.rows]
        assert mine.rows_affected == theirs.rows_affected


async def test_close_closes_the_connection(
    database: ChatDatabase, file_connections: list[sqlite3.Connection]
) -> None:
    await session_ids(database)

    await database.close()

    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        file_connections[0].execute("SELECT 1")
    with pytest.raises(ServiceUnavailableError, match="not open"):
        await session_ids(database)
