"""A ``file:`` SQLite database on one persistent stdlib sqlite3 connection, run as
libsql-client 0.3.1 runs it in file mode.

libsql-client opens a new sqlite3 connection for every call in file mode, so
every call also parses the schema again. The services keep one connection
open instead, with libsql-client's settings (autocommit, zero busy timeout),
so the connection's parsed schema and prepared statements are reused.
``execute_on_file`` returns results and raises errors as libsql-client does
(``ResultSet``, ``LibsqlError`` coded with the SQLite error name), so retry
rules written for libsql-client treat both paths alike.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

import libsql_client

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["connect_file", "execute_on_file", "sql_value"]


def connect_file(path: Path) -> sqlite3.Connection:
    """Open ``path`` with libsql-client's file-mode settings.

    Autocommit, and a zero busy timeout so that a lock held elsewhere fails at once
    and the caller's retry loop takes over.
    """
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)


def sql_value(value: Any) -> Any:
    """Convert an argument for sqlite3 as libsql-client 0.3.1 does in file mode."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Only finite floats (not Infinity or NaN) are supported")
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, str | int | float):
        return value
    return bytes(memoryview(value))


def execute_on_file(
    connection: sqlite3.Connection, sql: str, args: Sequence[Any]
) -> libsql_client.ResultSet:
    """Run one statement to its last row and return its result as libsql-client would.

    A sqlite3 error is raised as ``LibsqlError`` coded with the SQLite error name.
    Nothing awaits in here, so on an autocommit connection a read is its own read
    transaction and ends before the call returns.
    """
    values = [sql_value(value) for value in args]
    cursor = None
    try:
        cursor = connection.execute(sql, values)
        records = cursor.fetchall()
        columns = tuple(description[0] for description in cursor.description or ())
        rows_affected = cursor.rowcount
        last_insert_rowid = cursor.lastrowid
    except sqlite3.Error as error:
        code = getattr(error, "sqlite_errorname", "SQLITE")
        raise libsql_client.LibsqlError(str(error), code) from error
    finally:
        # Closing the cursor resets its statement, which ends a read transaction.
        if cursor is not None:
            cursor.close()
    indexes = {column: index for index, column in enumerate(columns)}
    rows = [libsql_client.Row(indexes, record) for record in records]
    return libsql_client.ResultSet(columns, rows, rows_affected, last_insert_rowid)
