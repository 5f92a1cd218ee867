"""The one place the chat service talks to its database.

Statements are SQLAlchemy Core, compiled for SQLite (qmark parameters) and
run through libsql-client, so a ``file:`` URL (embedded SQLite) and a libSQL
server URL behave alike.

Driver facts this module is built around: in file mode libsql-client runs
sqlite3 on the event loop, opens a new connection per call and sets a zero
busy timeout. Each call therefore runs to its end without yielding, so one
process never competes with itself for the write lock. Competition comes from
other processes sharing the file (chat replicas), and this module keeps it
short and rare:

- a file database is switched to WAL journaling, so readers never block a
  writer and a writer never blocks readers; only writers wait for each other;
- the service keeps one idle sqlite3 connection open while it runs, so the
  WAL index stays in place and the per-call connections never run WAL
  recovery or the last-connection checkpoint, both of which lock the file;
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
from prometheus_client import Counter
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from portfolio_chat.sessions.schema import metadata

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.sql.expression import Executable

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

_DIALECT = sqlite.dialect(paramstyle="qmark")


class ChatDatabase:
    """A libSQL client plus statement compilation and retries within a time budget."""

    def __init__(
        self, url: str, *, auth_token: str | None = None, busy_budget_s: float = BUSY_BUDGET_S
    ) -> None:
        self.url = url
        self.busy_budget_s = busy_budget_s
        self._auth_token = auth_token
        self._client: libsql_client.Client | None = None
        self._keeper: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Connect, switch a file database to WAL and create the tables when missing
        (safe with replicas starting at once)."""
        path = file_path_of(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._client = libsql_client.create_client(self.url, auth_token=self._auth_token)
        if path is not None:
            self._keeper = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=0
            )
            mode = await self._retrying(self._use_wal, "journal_mode")
            log.info("chat database opened", journal_mode=mode)
        for table in metadata.sorted_tables:
            await self.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                await self.execute(CreateIndex(index, if_not_exists=True))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()

    async def execute(self, statement: Executable) -> libsql_client.ResultSet:
        """Run one statement, retrying transient failures."""
        return (await self._run([statement]))[0]

    async def batch(self, statements: list[Executable]) -> list[libsql_client.ResultSet]:
        """Run statements in one transaction, retrying the whole batch on transient failures."""
        return await self._run(statements)

    async def fetch_all(self, statement: Executable) -> list[dict[str, Any]]:
        result = await self.execute(statement)
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    async def ping(self) -> None:
        assert self._client is not None
        await self._client.execute("SELECT 1")

    async def _use_wal(self) -> str:
        assert self._keeper is not None
        try:
            row = self._keeper.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as error:
            raise libsql_client.LibsqlError(str(error), "SQLITE_BUSY") from error
        return str(row[0])

    async def _run(self, statements: list[Executable]) -> list[libsql_client.ResultSet]:
        client = self._client
        if client is None:
            raise ServiceUnavailableError("The chat database is not open")
        compiled = [_compile(statement) for statement in statements]

        async def attempt() -> list[libsql_client.ResultSet]:
            if len(compiled) == 1:
                return [await client.execute(*compiled[0])]
            results: list[libsql_client.ResultSet] = await client.batch(
                [libsql_client.Statement(sql, args) for sql, args in compiled]
            )
            return results

        return await self._retrying(attempt, "statement" if len(compiled) == 1 else "batch")

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


def _compile(statement: Executable) -> tuple[str, list[Any]]:
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=_DIALECT, compile_kwargs={"render_postcompile": True}
    )
    params = compiled.params or {}
    args = [params[name] for name in getattr(compiled, "positiontup", None) or []]
    return str(compiled), args


def _transient(error: libsql_client.LibsqlError) -> bool:
    text = f"{error.code} {error}"
    return any(marker in text for marker in TRANSIENT_MARKERS)
