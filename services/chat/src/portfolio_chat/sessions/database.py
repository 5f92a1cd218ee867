"""The one place the chat service talks to its database.

Statements are SQLAlchemy Core, compiled for SQLite (qmark parameters) and
run through libsql-client, so a ``file:`` URL (embedded SQLite) and a libSQL
server URL behave alike. libsql-client's file mode opens a new connection per
call with no busy timeout, so a writer that meets another writer's lock gets
``SQLITE_BUSY`` at once: transient errors like that are retried with bounded
backoff, and a database that stays unreachable becomes a 503.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libsql_client
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.logging import get_logger
from prometheus_client import Counter
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from portfolio_chat.sessions.schema import metadata

if TYPE_CHECKING:
    from sqlalchemy.sql.expression import Executable

__all__ = ["ChatDatabase"]

log = get_logger("chat.database")

DATABASE_ERRORS = Counter(
    "chat_database_errors_total",
    "Chat database calls that failed with a transient error (retried or not).",
    ["code"],
)

RETRY_DELAYS_S = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
"""Pauses before each retry of a transient failure, in seconds (about 1.2 s in all)."""

TRANSIENT_MARKERS = ("BUSY", "LOCKED", "STREAM_EXPIRED", "connection", "Connection", "timeout")
"""Parts of a libSQL error code or message that mark a failure worth retrying."""

_DIALECT = sqlite.dialect(paramstyle="qmark")


class ChatDatabase:
    """A libSQL client plus statement compilation and retries."""

    def __init__(self, url: str, *, auth_token: str | None = None) -> None:
        self.url = url
        self._auth_token = auth_token
        self._client: libsql_client.Client | None = None

    async def open(self) -> None:
        """Connect and create the tables when missing (safe with replicas starting at once)."""
        _create_parent_folder(self.url)
        self._client = libsql_client.create_client(self.url, auth_token=self._auth_token)
        for table in metadata.sorted_tables:
            await self.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                await self.execute(CreateIndex(index, if_not_exists=True))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

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

    async def _run(self, statements: list[Executable]) -> list[libsql_client.ResultSet]:
        if self._client is None:
            raise ServiceUnavailableError("The chat database is not open")
        compiled = [_compile(statement) for statement in statements]
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                if len(compiled) == 1:
                    return [await self._client.execute(*compiled[0])]
                results: list[libsql_client.ResultSet] = await self._client.batch(
                    [libsql_client.Statement(sql, args) for sql, args in compiled]
                )
                return results
            except libsql_client.LibsqlError as error:
                if not _transient(error):
                    raise
                DATABASE_ERRORS.labels(error.code).inc()
                if delay is None:
                    log.error("chat database unavailable", code=error.code, attempts=attempt + 1)
                    raise ServiceUnavailableError(
                        "The chat database is unavailable; try again shortly"
                    ) from None
                await asyncio.sleep(delay * (1 + random.random()))
            except OSError as error:
                DATABASE_ERRORS.labels("os_error").inc()
                if delay is None:
                    log.error("chat database unreachable", error=str(error))
                    raise ServiceUnavailableError(
                        "The chat database is unreachable; try again shortly"
                    ) from None
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


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


def _create_parent_folder(url: str) -> None:
    """Create the folder of a ``file:`` database, so a fresh ``DATA_DIR`` works."""
    if url.startswith("file:"):
        Path(url.removeprefix("file:").removeprefix("//")).parent.mkdir(parents=True, exist_ok=True)
