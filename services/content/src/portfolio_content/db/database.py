"""The one module that talks to the database driver.

Everything else builds SQLAlchemy Core statements and hands them to
``Database``. This module compiles them with the SQLite dialect in qmark style
(``portfolio_shared.sql.statements``, which caches the compiled shapes) and runs them through
libsql-client, which serves ``file:`` URLs (stdlib sqlite3) and libSQL servers
(Hrana over WebSocket). Swapping the driver means rewriting this module only.

Driver facts this module is built around: in file mode libsql-client runs
sqlite3 on the event loop, opens a new connection per call and sets a zero
busy timeout, so a writer that meets another writer's lock fails at once with
``SQLITE_BUSY``. Plain reads on a ``file:`` database bypass libsql-client and
run on one persistent stdlib sqlite3 connection with the same settings, which
keeps its parsed schema and prepared statements between calls. Each read runs
to completion without an await, in autocommit mode, so it is its own read
transaction and reads every commit made before it, by any connection or process.
Transactions still get a connection of their own from libsql-client, because
their statements interleave with other work across awaits.

Every operation is retried as a whole on transient
errors (busy or locked database, expired Hrana stream, dropped connection)
with a bounded exponential backoff; each transient error is counted in
``database_connection_errors_total``. When the attempts run out the caller
gets ``DatabaseUnavailableError`` (503) and nothing was written, because an
attempt either commits entirely or rolls back.
"""

# NOTE: the tests run every query against ``file:`` databases only. The libSQL
# server path (Hrana over WebSocket) follows libsql-client 0.3.1's documented API
# but no test here starts a libSQL server.

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import libsql_client
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.logging import get_logger
from portfolio_shared.sql.sqlite_file import connect_file, execute_on_file
from portfolio_shared.sql.statements import compile_statement
from prometheus_client import Counter

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Awaitable, Callable, Sequence

    from portfolio_shared.sql.statements import BoundStatement
    from sqlalchemy.sql.expression import ClauseElement as Executable

__all__ = [
    "DATABASE_ERRORS",
    "Database",
    "DatabaseUnavailableError",
    "RetryPolicy",
    "Row",
    "Transaction",
    "UniqueViolationError",
    "compile_statement",
    "file_path_of",
]

log = get_logger("content.database")

T = TypeVar("T")

Row = dict[str, Any]
"""One result row, keyed by column name."""

DATABASE_ERRORS = Counter(
    "database_connection_errors_total",
    "Transient database errors (busy, locked, dropped connection), each one retried or failed.",
    ["reason"],
)

_BUSY_CODES = frozenset(
    {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY"}
)
"""SQLite codes of a lock held by another writer; the whole operation is retried."""

_CONNECTION_CODES = frozenset(
    {
        "STREAM_EXPIRED",
        "STREAM_CLOSED",
        "TRANSACTION_CLOSED",
        "HRANA_WEBSOCKET_ERROR",
        "HRANA_PROTO_ERROR",
        "CLIENT_CLOSED",
    }
)
"""Driver codes of a lost server connection or stream; the whole operation is retried."""


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database kept failing with transient errors until the retry budget ran out."""


class UniqueViolationError(Exception):
    """A write broke a unique constraint; ``detail`` is the driver's message."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _TransientError(Exception):
    def __init__(self, reason: Literal["busy", "connection"], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient database errors."""

    attempts: int = 8
    """Attempts in all, the first included."""

    base_delay_s: float = 0.01
    """Delay after the first failure, in seconds; doubled after each further one."""

    max_delay_s: float = 0.5
    """Maximum delay between two attempts, in seconds."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Invalid retry policy. At least one attempt is required.")


def file_path_of(url: str) -> Path | None:
    """Return the file path of a ``file:`` URL, or None for a server URL."""
    if not url.startswith("file:"):
        return None
    path = url[len("file:") :]
    if path.startswith("//"):
        path = path[2:]
    return Path(path)


def _client_url(url: str) -> str:
    # libsql-client runs transactions only over Hrana WebSockets, not plain HTTP.
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


def _classify(error: BaseException) -> BaseException:
    """Map a driver failure to ``_TransientError``, ``UniqueViolationError`` or itself."""
    if isinstance(error, libsql_client.LibsqlError):
        code = str(error.code or "")
        text = str(error)
        if code in _BUSY_CODES or "database is locked" in text:
            return _TransientError("busy", text)
        if code in _CONNECTION_CODES or ("stream" in text.lower() and "expired" in text.lower()):
            return _TransientError("connection", text)
        if "UNIQUE constraint failed" in text or code.startswith("SQLITE_CONSTRAINT_UNIQUE"):
            return UniqueViolationError(text)
        if code.startswith("SQLITE_CONSTRAINT_PRIMARYKEY"):
            return UniqueViolationError(text)
        return cast("BaseException", error)
    if isinstance(error, ConnectionError | OSError | TimeoutError):
        return _TransientError("connection", str(error) or type(error).__name__)
    if type(error).__module__.startswith("aiohttp"):
        return _TransientError("connection", str(error) or type(error).__name__)
    return error


def _rows(result: Any) -> list[Row]:
    columns = tuple(result.columns)
    return [dict(zip(columns, tuple(row), strict=True)) for row in result.rows]


class Transaction:
    """Statements run inside one database transaction (see ``Database.transaction``)."""

    def __init__(self, driver_transaction: Any) -> None:
        self._driver = driver_transaction

    async def fetch_all(
        self, statement: Executable | BoundStatement | str, args: Sequence[Any] = ()
    ) -> list[Row]:
        sql, bound = compile_statement(statement)
        return _rows(await self._driver.execute(sql, [*bound, *args]))

    async def fetch_one(
        self, statement: Executable | BoundStatement | str, args: Sequence[Any] = ()
    ) -> Row | None:
        rows = await self.fetch_all(statement, args)
        return rows[0] if rows else None

    async def execute(
        self, statement: Executable | BoundStatement | str, args: Sequence[Any] = ()
    ) -> int:
        """Run a statement and return the number of rows it changed."""
        sql, bound = compile_statement(statement)
        result = await self._driver.execute(sql, [*bound, *args])
        return int(result.rows_affected)


class Database:
    """A database reached through libsql-client (plain reads of a ``file:`` database through
    stdlib sqlite3), with retries on transient errors."""

    def __init__(
        self, url: str, *, auth_token: str | None = None, retry: RetryPolicy | None = None
    ) -> None:
        self.url = url
        self._auth_token = auth_token
        self.retry = retry or RetryPolicy()
        self._client: libsql_client.Client | None = None
        self._file_path = file_path_of(url)
        # NOTE: the read connection keeps the file it opened. A file renamed over the
        # database while the service runs is seen only after a restart, which is how a
        # restore is put in place: it loads a dump into a new database.
        self._reader: sqlite3.Connection | None = None

    @property
    def is_file(self) -> bool:
        return file_path_of(self.url) is not None

    async def open(self) -> None:
        path = file_path_of(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        await self._with_retries("open", self._ensure_client)

    async def close(self) -> None:
        self._close_reader()
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Operations

    async def ping(self) -> None:
        """Run ``SELECT 1`` once, without retries (for readiness checks)."""
        try:
            client = await self._ensure_client()
            await client.execute("SELECT 1")
        except Exception as error:
            classified = _classify(error)
            if isinstance(classified, _TransientError):
                DATABASE_ERRORS.labels(classified.reason).inc()
                if classified.reason == "connection":
                    await self._reset_client()
            raise

    async def fetch_all(
        self,
        statement: Executable | BoundStatement | str,
        args: Sequence[Any] = (),
        *,
        name: str = "read",
    ) -> list[Row]:
        sql, bound = compile_statement(statement)
        values = [*bound, *args]

        async def attempt() -> list[Row]:
            if self._file_path is not None:
                return _rows(execute_on_file(self._ensure_reader(self._file_path), sql, values))
            client = await self._ensure_client()
            return _rows(await client.execute(sql, values))

        return await self._with_retries(name, attempt)

    async def fetch_one(
        self,
        statement: Executable | BoundStatement | str,
        args: Sequence[Any] = (),
        *,
        name: str = "read",
    ) -> Row | None:
        rows = await self.fetch_all(statement, args, name=name)
        return rows[0] if rows else None

    async def transaction(
        self, work: Callable[[Transaction], Awaitable[T]], *, name: str = "write"
    ) -> T:
        """Run ``work`` in one transaction and commit; on a transient error roll back and
        run it again from the start. An exception from ``work`` rolls back and propagates."""

        async def attempt() -> T:
            client = await self._ensure_client()
            driver_transaction = client.transaction()
            try:
                result = await work(Transaction(driver_transaction))
                await driver_transaction.commit()
            except BaseException:
                await self._rollback_quietly(driver_transaction)
                raise
            return result

        return await self._with_retries(name, attempt)

    async def execute_script(self, statements: Sequence[str], *, name: str = "script") -> None:
        """Run raw SQL statements in one transaction (used to restore a dump)."""

        async def work(transaction: Transaction) -> None:
            for statement in statements:
                await transaction.execute(statement)

        await self.transaction(work, name=name)

    # Internals

    async def _ensure_client(self) -> libsql_client.Client:
        if self._client is None or self._client.closed:
            self._client = libsql_client.create_client(
                _client_url(self.url), auth_token=self._auth_token
            )
        return self._client

    def _ensure_reader(self, path: Path) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = connect_file(path)
        return self._reader

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    async def _reset_client(self) -> None:
        self._close_reader()
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception as error:
                log.warning("database client close failed", error=str(error))

    async def _rollback_quietly(self, driver_transaction: Any) -> None:
        try:
            await driver_transaction.rollback()
        except Exception as error:
            log.debug("rollback failed", error=str(error))
        finally:
            driver_transaction.close()

    async def _with_retries(self, name: str, attempt: Callable[[], Awaitable[T]]) -> T:
        delay = self.retry.base_delay_s
        for number in range(1, self.retry.attempts + 1):
            try:
                return await attempt()
            except Exception as error:
                classified = _classify(error)
                if not isinstance(classified, _TransientError):
                    if classified is error:
                        raise
                    raise classified from error
                transient = classified
            DATABASE_ERRORS.labels(transient.reason).inc()
            if transient.reason == "connection":
                await self._reset_client()
            if number == self.retry.attempts:
                log.error(
                    "database unavailable, giving up",
                    operation=name,
                    attempts=number,
                    reason=transient.reason,
                    error=transient.detail,
                )
                raise DatabaseUnavailableError(
                    "The database is unavailable right now "
                    f"({transient.reason}: {transient.detail}); nothing was changed, "
                    "try again shortly"
                )
            pause = delay * (0.5 + random.random() / 2)
            log.warning(
                "database operation retried",
                operation=name,
                attempt=number,
                reason=transient.reason,
                error=transient.detail,
                delay_ms=round(pause * 1000, 1),
            )
            await asyncio.sleep(pause)
            delay = min(delay * 2, self.retry.max_delay_s)
        raise AssertionError("unreachable")  # pragma: no cover
