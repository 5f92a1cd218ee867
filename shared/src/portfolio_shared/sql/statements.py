"""Compiling SQLAlchemy Core statements to SQLite SQL text and positional arguments.

The content and chat services build their statements from a handful of fixed
shapes, so the
compiled form of each shape is kept in a bounded LRU cache keyed by
SQLAlchemy's statement cache key, as SQLAlchemy's own ``Engine`` does. The
values of a statement's bound parameters are not part of that key: they are
read from each statement and placed into the cached compiled form.

Building a statement and computing its cache key still run on every call.
A statement on a hot path skips both as a ``CompiledStatement``: built and
compiled once, then bound to each run's values as a ``BoundStatement``. DDL
(``CREATE TABLE``), which has no cache key and no parameters, is compiled in
full, and a raw SQL string passes through with no arguments.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from sqlalchemy.dialects import sqlite

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.sql.compiler import Compiled, SQLCompiler
    from sqlalchemy.sql.expression import ClauseElement

__all__ = [
    "DIALECT",
    "STATEMENT_CACHE_SIZE",
    "BoundStatement",
    "CompiledStatement",
    "StatementCache",
    "compile_in_full",
    "compile_statement",
]

DIALECT: Final = sqlite.dialect(paramstyle="qmark")
"""The SQLite dialect in qmark style, the one both drivers (sqlite3 and libsql-client) accept."""

STATEMENT_CACHE_SIZE: Final = 256
"""Compiled statement shapes kept in the process-wide cache; the least recently used go first."""

_UNCACHEABLE: Final = object()
"""Cache entry of a shape whose SQL text depends on its values (``IN`` lists, ``literal_execute``)."""


def _positional(compiled: Compiled, params: Mapping[str, Any]) -> list[Any]:
    # DDL compilers have no ``positiontup``: a DDL statement takes no arguments.
    names = getattr(compiled, "positiontup", None) or ()
    return [params[name] for name in names]


def compile_in_full(statement: ClauseElement) -> tuple[str, list[Any]]:
    """Return the SQL text (qmark style) and positional arguments of a full compile, no cache."""
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return compiled.string, _positional(compiled, compiled.params)


class StatementCache:
    """A bounded LRU cache of compiled statements, keyed by statement shape."""

    def __init__(self, size: int = STATEMENT_CACHE_SIZE) -> None:
        if size < 1:
            raise ValueError("Invalid statement cache size. The size must be at least 1.")
        self.size = size
        self._entries: OrderedDict[Any, object] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def compile(self, statement: ClauseElement | str) -> tuple[str, list[Any]]:
        """Return the SQL text (qmark style) and positional arguments of a statement.

        A statement that SQLAlchemy cannot key (DDL among them), or whose
        parameters are rendered into the SQL text at execution time (an
        expanding ``IN`` list, a ``literal_execute`` parameter), is compiled in
        full on every call.
        """
        if isinstance(statement, str):
            return statement, []

        cache_key = statement._generate_cache_key()
        if cache_key is None:
            return compile_in_full(statement)

        entry = self._entries.get(cache_key.key)
        if entry is None:
            entry = self._compile_shape(statement, cache_key)
            self._entries[cache_key.key] = entry
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(cache_key.key)

        if entry is _UNCACHEABLE:
            return compile_in_full(statement)
        compiled = cast("SQLCompiler", entry)
        # The cached compiled form names the bound parameters of the statement that
        # was compiled first. This statement's values take their places in order.
        params = compiled.construct_params(extracted_parameters=cache_key.bindparams)
        return compiled.string, _positional(compiled, params)

    @staticmethod
    def _compile_shape(statement: ClauseElement, cache_key: Any) -> object:
        compiled = cast("SQLCompiler", statement.compile(dialect=DIALECT, cache_key=cache_key))
        if compiled.post_compile_params or compiled.literal_execute_params:
            return _UNCACHEABLE
        return compiled


class BoundStatement(NamedTuple):
    """SQL text (qmark style) with the positional arguments of one run."""

    sql: str
    args: list[Any]


class CompiledStatement:
    """A statement compiled once, whose bind parameters without a value get one at each run.

    ``bindparam("session_id")`` in the statement is a parameter that ``bind``
    requires; values written into the statement (``column == "active"``) stay
    fixed. Statements whose SQL text depends on values (expanding ``IN``
    lists, ``literal_execute`` parameters) are rejected with ``ValueError``.
    """

    def __init__(self, statement: ClauseElement) -> None:
        compiled = cast("SQLCompiler", statement.compile(dialect=DIALECT))
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError(
                "Invalid compiled statement. Its SQL text depends on the values "
                "(an expanding IN list or a literal_execute parameter); run it uncompiled."
            )
        self.sql: str = compiled.string
        """The SQL text, qmark style."""
        self._compiled = compiled
        self.names: frozenset[str] = frozenset(
            parameter.key for parameter in compiled.binds.values() if parameter.required
        )
        """Names of the bind parameters that each run supplies."""

    def bind(self, **values: Any) -> BoundStatement:
        """Return the SQL text with the positional arguments of one run.

        Raises ``ValueError`` when a value is missing or a name is not in ``names``.
        """
        if values.keys() != self.names:
            raise ValueError(
                f"Invalid bind parameters {', '.join(sorted(values)) or 'none'}. "
                f"The statement requires values for exactly {', '.join(sorted(self.names)) or 'none'}."
            )
        params = self._compiled.construct_params(values)
        return BoundStatement(self.sql, _positional(self._compiled, params))


_CACHE = StatementCache()


def compile_statement(statement: ClauseElement | BoundStatement | str) -> tuple[str, list[Any]]:
    """Return the SQL text (qmark style) and positional arguments of a statement.

    Compiled shapes are reused from a process-wide ``StatementCache``. A
    ``BoundStatement`` is compiled already and returned as it is.
    """
    if isinstance(statement, BoundStatement):
        return statement.sql, statement.args
    return _CACHE.compile(statement)
