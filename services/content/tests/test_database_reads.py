"""Plain reads of a ``file:`` database on the persistent read connection: they see every commit
made elsewhere, hold no snapshot between calls, keep the retry rules, convert arguments and
report errors as the libsql-client path does."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import libsql_client
import pytest
import sqlalchemy as sa
from portfolio_content.db import database as database_module
from portfolio_content.db import migrate
from portfolio_content.db.database import (
    DATABASE_ERRORS,
    Database,
    DatabaseUnavailableError,
    RetryPolicy,
)
from portfolio_content.db.schema import content
from portfolio_content.sample import SAMPLE_DIR
from portfolio_shared.sql import sqlite_file

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from portfolio_content.db.database import Row, Transaction

pytestmark = pytest.mark.timeout(60)

ITEM_COUNT = sa.select(sa.func.count().label("items")).select_from(content)


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "portfolio.db"
    migrate.upgrade(f"file:{path}")
    return path


@pytest.fixture
async def database(database_path: Path) -> AsyncIterator[Database]:
    retry = RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.001)
    async with Database(f"file:{database_path}", retry=retry) as db:
        yield db


@pytest.fixture
def read_connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """The connection of every file read, in order."""
    seen: list[sqlite3.Connection] = []
    read = sqlite_file.execute_on_file

    def recording(
        connection: sqlite3.Connection, sql: str, args: Sequence[Any]
    ) -> libsql_client.ResultSet:
        seen.append(connection)
        return read(connection, sql, args)

    monkeypatch.setattr(database_module, "execute_on_file", recording)
    return seen


@pytest.fixture
def journal_mode_delete(database_path: Path) -> Path:
    """The database switched from WAL to a rollback journal, where a writer blocks readers."""
    connection = sqlite3.connect(database_path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    return database_path


def insert_item(path: Path, item_id: str) -> None:
    """Insert one content row through a separate connection and commit it."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute(
            "INSERT INTO content (id, type, slug, data, created_at, updated_at) "
            "VALUES (?, 'note', ?, '{}', '', '')",
            (item_id, item_id),
        )
    finally:
        connection.close()


def run_ops(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the operator CLI in a process of its own on ``data_dir``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"TURSO_DATABASE_URL", "TURSO_AUTH_TOKEN"}
    }
    environment["DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "portfolio_content.ops", *argv],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def errors_of(reason: str) -> float:
    value: float = DATABASE_ERRORS.labels(reason)._value.get()
    return value


async def count_items(database: Database) -> int:
    row = await database.fetch_one(ITEM_COUNT)
    assert row is not None
    return int(row["items"])


async def test_reads_share_one_connection(
    database: Database, read_connections: list[sqlite3.Connection]
) -> None:
    await count_items(database)
    await count_items(database)

    assert len(read_connections) == 2
    assert read_connections[0] is read_connections[1]


async def test_read_sees_a_commit_from_another_connection(
    database: Database, database_path: Path
) -> None:
    before = await count_items(database)
    insert_item(database_path, "content_other")

    assert (before, await count_items(database)) == (0, 1)


async def test_read_sees_a_commit_of_the_same_database(database: Database) -> None:
    before = await count_items(database)

    async def work(transaction: Transaction) -> None:
        await transaction.execute(
            sa.insert(content).values(
                id="content_x", type="t", slug="s", data="{}", created_at="", updated_at=""
            )
        )

    await database.transaction(work)

    assert (before, await count_items(database)) == (0, 1)


async def test_read_sees_rows_the_ops_cli_imported(database: Database, database_path: Path) -> None:
    before = await count_items(database)

    imported = run_ops(database_path.parent, "import", str(SAMPLE_DIR))

    assert imported.returncode == 0, imported.stderr
    assert (before, await count_items(database)) == (0, 14)


async def test_restored_database_is_read_in_full(database_path: Path, tmp_path: Path) -> None:
    data_dir = database_path.parent
    restored = tmp_path / "restored.db"
    imported = run_ops(data_dir, "import", str(SAMPLE_DIR))
    backup = run_ops(data_dir, "backup", str(tmp_path / "backup.sql"))

    restore = run_ops(
        data_dir, "restore", str(tmp_path / "backup.sql"), "--database-url", f"file:{restored}"
    )

    assert (imported.returncode, backup.returncode, restore.returncode) == (0, 0, 0), (
        imported.stderr + backup.stderr + restore.stderr
    )
    async with Database(f"file:{restored}") as database:
        assert await count_items(database) == 14
        assert await database.fetch_one("PRAGMA journal_mode") == {"journal_mode": "wal"}


async def test_read_holds_no_snapshot_between_calls(
    database: Database, database_path: Path
) -> None:
    insert_item(database_path, "content_first")
    await count_items(database)
    insert_item(database_path, "content_second")

    checkpointer = sqlite3.connect(database_path, isolation_level=None)
    try:
        journal_mode = checkpointer.execute("PRAGMA journal_mode").fetchone()[0]
        busy, _, _ = checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        checkpointer.close()

    assert journal_mode == "wal"
    assert busy == 0


async def test_locked_read_is_retried_then_503(
    database: Database, journal_mode_delete: Path
) -> None:
    await count_items(database)
    writer = sqlite3.connect(journal_mode_delete, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    before = errors_of("busy")
    try:
        with pytest.raises(DatabaseUnavailableError, match="database is locked"):
            await count_items(database)
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert errors_of("busy") - before == database.retry.attempts
    assert await count_items(database) == 0


async def test_connection_error_replaces_the_read_connection(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[sqlite3.Connection] = []
    read = sqlite_file.execute_on_file

    def dropped_once(
        connection: sqlite3.Connection, sql: str, args: Sequence[Any]
    ) -> libsql_client.ResultSet:
        seen.append(connection)
        if len(seen) == 1:
            raise ConnectionResetError("connection reset")
        return read(connection, sql, args)

    monkeypatch.setattr(database_module, "execute_on_file", dropped_once)
    before = errors_of("connection")

    assert await count_items(database) == 0
    assert errors_of("connection") - before == 1
    assert len(seen) == 2
    assert seen[0] is not seen[1]
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        seen[0].execute("SELECT 1")


async def test_close_closes_the_read_connection(
    database: Database, read_connections: list[sqlite3.Connection]
) -> None:
    await count_items(database)

    await database.close()

    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        read_connections[0].execute("SELECT 1")


@pytest.mark.parametrize(
    "value",
    [
        None,
        7,
        1.5,
        "text",
        True,
        b"\x00bytes",
        bytearray(b"array"),
        memoryview(b"view"),
        datetime(2025, 3, 1, 10, 0, tzinfo=UTC),
    ],
    ids=repr,
)
async def test_arguments_convert_as_in_a_transaction(database: Database, value: Any) -> None:
    async def read_in_transaction(transaction: Transaction) -> Row | None:
        return await transaction.fetch_one("SELECT ? AS value", [value])

    in_transaction = await database.transaction(read_in_transaction)
    plain = await database.fetch_one("SELECT ? AS value", [value])

    assert plain == in_transaction


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
async def test_non_finite_floats_are_rejected(database: Database, value: float) -> None:
    with pytest.raises(ValueError, match="Only finite floats"):
        await database.fetch_one("SELECT ? AS value", [value])


async def test_sql_error_is_raised_as_the_driver_error(database: Database) -> None:
    with pytest.raises(libsql_client.LibsqlError, match="no such table") as error:
        await database.fetch_all("SELECT * FROM missing_table")
    assert error.value.code == "SQLITE_ERROR"
