"""SQL dumps of any configured database, and restoring one into a new database.

A dump is plain SQL: the ``CREATE`` statement of every table, its rows as
``INSERT`` statements, then indexes, inside ``BEGIN``/``COMMIT``, the same
shape as SQLite's ``.dump`` (whose output ``restore_dump`` accepts too). It is
read through the database interface, so it works for a ``file:`` database and
a libSQL server alike.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any

from portfolio_shared.timeutil import format_timestamp, utc_now

from portfolio_content.db.database import file_path_of

if TYPE_CHECKING:
    from pathlib import Path

    from portfolio_content.db.database import Database

__all__ = ["RestoreRefusedError", "mask_url", "read_statements", "restore_dump", "write_dump"]

_SKIPPED_PREFIXES = ("BEGIN", "COMMIT", "PRAGMA", "END")


class RestoreRefusedError(Exception):
    """The restore target already contains tables; a dump is only restored into a new database."""


def mask_url(url: str) -> str:
    """``url`` with any password or ``authToken`` replaced by ``****``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if url.startswith("file:"):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":****@")
    query = urlencode(
        [
            (key, "****" if key.lower() == "authtoken" else value)
            for key, value in parse_qsl(parts.query)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        return "X'" + value.hex() + "'"
    return "'" + str(value).replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def write_dump(database: Database, target: Path) -> dict[str, int]:
    """Write the whole database to ``target`` as SQL; returns the row count of each table."""
    schema = await database.fetch_all(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        name="backup schema",
    )
    counts: dict[str, int] = {}
    lines = [
        "-- Portfolio content database dump",
        f"-- source: {mask_url(database.url)}",
        f"-- created: {format_timestamp(utc_now())}",
        "BEGIN TRANSACTION;",
    ]
    for entry in (row for row in schema if row["type"] == "table"):
        table = entry["name"]
        lines.append(f"{entry['sql']};")
        rows = await database.fetch_all(
            # The table name comes from sqlite_master and is quoted as an identifier.
            f"SELECT * FROM {_identifier(table)} ORDER BY rowid",  # noqa: S608
            name="backup rows",
        )
        counts[table] = len(rows)
        for row in rows:
            values = ",".join(_literal(value) for value in row.values())
            lines.append(f"INSERT INTO {_identifier(table)} VALUES({values});")
    for entry in (row for row in schema if row["type"] != "table"):
        lines.append(f"{entry['sql']};")
    lines.append("COMMIT;")
    await asyncio.to_thread(target.write_text, "\n".join(lines) + "\n", encoding="utf-8")
    return counts


def read_statements(text: str) -> list[str]:
    """Split SQL text into complete statements, dropping comments-only lines and
    transaction or ``PRAGMA`` statements (the restore runs its own transaction)."""
    statements: list[str] = []
    pending = ""
    for line in text.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip().rstrip(";").strip()
            pending = ""
            if not statement.upper().startswith(_SKIPPED_PREFIXES):
                statements.append(statement)
    if pending.strip():
        raise ValueError("The dump ends in the middle of a statement; it is incomplete.")
    return statements


async def restore_dump(database: Database, source: Path) -> int:
    """Load ``source`` into ``database``, which must have no tables; returns the statements run.

    Everything runs in one transaction, so a failed restore leaves the target empty.
    """
    existing = await database.fetch_all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        name="restore check",
    )
    if existing:
        names = ", ".join(sorted(row["name"] for row in existing))
        raise RestoreRefusedError(
            f"The target database already has tables ({names}); restore into a new database."
        )
    statements = read_statements(await asyncio.to_thread(source.read_text, encoding="utf-8"))
    await database.execute_script(statements, name="restore")
    path = file_path_of(database.url)
    if path is not None:
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()
    return len(statements)
