"""The one place the chat service talks to its database.

Statements are SQLAlchemy Core, compiled for SQLite in qmark style
(``portfolio_shared.sql.statements``, which caches the compiled shapes). A libSQL server URL is
served by libsql-client. A ``file:`` URL is served by one persistent stdlib
sqlite3 connection with the settings libsql-client 0.3.1 uses in file mode
(autocommit, zero busy timeout), which keeps its parsed schema and prepared
statements between calls, where libsql-client would open a new connection per
call. Errors on that connection are raised as ``LibsqlError`` coded with the
SQLite error name, as libsql-client raises them, so retries treat both alike.

Every call on the file connection runs to its end without yielding to the
event loop: a single statement runs in autocommit, a batch runs from
``BEGIN`` to ``COMMIT`` (or ``ROLLBACK`` on failure). So no two calls of one
process interleave on the connection, and one process never competes with
itself for the write lock. Competition comes from other processes sharing the
file (chat replicas), and this module keeps it short and rare:

- a file database is switched to WAL journaling, so readers never block a
  writer and a writer never blocks readers; only writers wait for each other;
- the connection stays open while the service runs, so the WAL index stays
  in place and no call runs WAL recovery or the last-connection checkpoint,
  both of which lock the file;
- a call that meets a lock (``SQLITE_BUSY``/``SQLITE_LOCKED``) or a dropped
  server connection is retried as a whole, with jittered exponential backoff,
  until a time budget (``BUSY_BUDGET_S``) is spent; only then does the caller
  get a 503. A batch runs in one transaction, so a failed attempt wrote nothing.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import libsql_client
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.logging import get_logger
from portfolio_shared.sql.sqlite_file import connect_file, execute_on_file
from portfolio_shared.sql.statements import compile_statement
from prometheus_client import Counter
from sqlalchemy.schema import CreateIndex, CreateTable

from portfolio_chat.sessions.schema import metadata

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from portfolio_shared.sql.statements import BoundStatement
    from sqlalchemy.sql.expression import ClauseElement

    Statement = ClauseElement | BoundStatement

__all__ = ["BUSY_BUDGET_S", "DATABASE_ERRORS", "ChatDatabase", "file_path_of"]

log = get_logger("chat.database")

T = TypeVar("T")

DATABASE_ERRORS = Counter(
    "chat_database_errors_total",
    "Chat database calls that failed with a transient error (retried or not).",
    ["code"],
)

BUSY_BUDGET_S = 10.0
"""Time one call may spend retrying transient failures before it becomes a 503, in seconds."""

FIRST_DELAY_S = 0.005
"""Maximum pause before the first retry, in seconds. It doubles after each further failure."""

MAX_DELAY_S = 0.1
"""Maximum pause between two attempts, in seconds."""

TRANSIENT_MARKERS = ("BUSY", "LOCKED", "STREAM_EXPIRED", "connection", "Connection", "timeout")
"""Parts of a libSQL error code or message that mark a failure worth retrying."""


class ChatDatabase:
    """A chat database (a libSQL server, or a file on one persistent sqlite3 connection)
    with statement compilation and retries within a time budget."""

    def __init__(
        self, url: str, *, auth_token: str | None = None, busy_budget_s: float = BUSY_BUDGET_S
    ) -> None:
        self.url = url
        self.busy_budget_s = busy_budget_s
        self._auth_token = auth_token
        self._client: libsql_client.Client | None = None
        self._file_path = file_path_of(url)
        # NOTE: the connection keeps the file it opened. A file renamed over the
        # database while the service runs is seen only after a restart.
        self._connection: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Connect, switch a file database to WAL and create the tables when missing
        (safe with replicas starting at once)."""
        path = self._file_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._client = libsql_client.create_client(self.url, auth_token=self._auth_token)
        if path is not None:
            mode = await self._retrying(self._use_wal, "journal_mode")
            log.info("chat database opened", journal_mode=mode)
        for table in metadata.sorted_tables:
            await self.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                await self.execute(CreateIndex(index, if_not_exists=True))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def execute(self, statement: Statement) -> libsql_client.ResultSet:
        """Run one statement, retrying transient failures."""
        return (await self._run([statement]))[0]

    async def batch(self, statements: Sequence[Statement]) -> list[libsql_client.ResultSet]:
        """Run statements in one transaction, retrying the whole batch on transient failures."""
        return await self._run(statements)

    async def fetch_all(self, statement: Statement) -> list[dict[str, Any]]:
        result = await self.execute(statement)
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    async def ping(self) -> None:
        """Run ``SELECT 1`` through libsql-client, which opens a new connection to a file."""
        if self._client is None:
            raise ServiceUnavailableError("The chat database is not open")
        await self._client.execute("SELECT 1")

    async def _use_wal(self) -> str:
        cursor = None
        try:
            cursor = self._file_connection().execute("PRAGMA journal_mode=WAL")
            (row,) = cursor.fetchall()
        except sqlite3.OperationalError as error:
            raise libsql_client.LibsqlError(str(error), "SQLITE_BUSY") from error
        finally:
            if cursor is not None:
                cursor.close()
        return str(row[0])

    async def _run(self, statements: Sequence[Statement]) -> list[libsql_client.ResultSet]:
        client = self._client
        if client is None:
            raise ServiceUnavailableError("The chat database is not open")
        compiled = [compile_statement(statement) for statement in statements]
        operation = "statement" if len(compiled) == 1 else "batch"

        async def attempt_on_file() -> list[libsql_client.ResultSet]:
            if len(compiled) == 1:
                return [execute_on_file(self._file_connection(), *compiled[0])]
            return self._batch_on_file(compiled)

        async def attempt() -> list[libsql_client.ResultSet]:
            if len(compiled) == 1:
                return [await client.execute(*compiled[0])]
            results: list[libsql_client.ResultSet] = await client.batch(
                [libsql_client.Statement(sql, args) for sql, args in compiled]
            )
            return results

        if self._file_path is not None:
            return await self._retrying(attempt_on_file, operation)
        return await self._retrying(attempt, operation)

    def _file_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            assert self._file_path is not None
            self._connection = connect_file(self._file_path)
        return self._connection

    def _batch_on_file(
        self, compiled: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[libsql_client.ResultSet]:
        """Run statements between ``BEGIN`` and ``COMMIT``; on any failure roll back and
        re-raise.

        Nothing awaits in here, so no other call of this process can run a statement
        on the connection inside the transaction.
        """
        connection = self._file_connection()
        try:
            execute_on_file(connection, "BEGIN", ())
            results = [execute_on_file(connection, sql, args) for sql, args in compiled]
            execute_on_file(connection, "COMMIT", ())
        except BaseException:
            self._roll_back(connection)
            raise
        return results

    def _roll_back(self, connection: sqlite3.Connection) -> None:
        # A failed COMMIT (a lock in rollback-journal mode) leaves the transaction open.
        if not connection.in_transaction:
            return
        try:
            connection.rollback()
        except sqlite3.Error as error:
            # Closing the connection rolls the transaction back; the next call reconnects.
            log.error("chat database rollback failed, reconnecting", error=str(error))
            self._connection = None
            connection.close()

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], operation: str) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or the time budget is spent."""
        deadline = time.monotonic() + self.busy_budget_s
        ceiling = FIRST_DELAY_S
        attempts = 0
        while True:
            attempts += 1
            try:
                return await attempt()
            except libsql_client.LibsqlError as error:
                if not _transient(error):
                    raise
                code = str(error.code)
                detail = "unavailable"
            except OSError:
                code = "os_error"
                detail = "unreachable"
            DATABASE_ERRORS.labels(code).inc()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.error(
                    "chat database " + detail,
                    operation=operation,
                    code=code,
                    attempts=attempts,
                    budget_s=self.busy_budget_s,
                )
                raise ServiceUnavailableError(
                    f"The chat database is {detail}; try again shortly"
                ) from None
            # Full jitter: replicas that met the same lock do not retry in step.
            await asyncio.sleep(min(random.uniform(0, ceiling), remaining))
            ceiling = min(ceiling * 2, MAX_DELAY_S)


def file_path_of(url: str) -> Path | None:
    """Return the file path of a ``file:`` URL, or None for a server URL."""
    if not url.startswith("file:"):
        return None
    return Path(url.removeprefix("file:").removeprefix("//"))


def _transient(error: libsql_client.LibsqlError) -> bool:
    text = f"{error.code} {error}"
    return any(marker in text for marker in TRANSIENT_MARKERS)
