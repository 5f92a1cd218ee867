"""Compiling SQLAlchemy Core statements to SQLite SQL text and positional arguments.

The chat service builds its statements from a handful of fixed shapes, so the
compiled form of each shape is kept in a bounded LRU cache keyed by
SQLAlchemy's statement cache key, as SQLAlchemy's own ``Engine`` does. The
values of a statement's bound parameters are not part of that key: they are
read from each statement and placed into the cached compiled form.

This is a copy of the content service's ``portfolio_content.db.statements``
cache, kept here because the two services are separate packages. It also
compiles DDL (``CREATE TABLE``), which has no cache key and no parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy.dialects import sqlite

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.sql.compiler import Compiled, SQLCompiler
    from sqlalchemy.sql.expression import ClauseElement

__all__ = ["DIALECT", "STATEMENT_CACHE_SIZE", "StatementCache", "compile_statement"]

DIALECT: Final = sqlite.dialect(paramstyle="qmark")
"""The SQLite dialect in qmark style, the one both drivers (sqlite3 and libsql-client) accept."""

STATEMENT_CACHE_SIZE: Final = 128
"""Compiled statement shapes kept in the process-wide cache; the least recently used go first."""

_UNCACHEABLE: Final = object()
"""Cache entry of a shape whose SQL text depends on its values (``IN`` lists, ``literal_execute``)."""


def _positional(compiled: Compiled, params: Mapping[str, Any]) -> list[Any]:
    # DDL compilers have no ``positiontup``: a DDL statement takes no arguments.
    names = getattr(compiled, "positiontup", None) or ()
    return [params[name] for name in names]


def _compile_uncached(statement: ClauseElement) -> tuple[str, list[Any]]:
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

    def compile(self, statement: ClauseElement) -> tuple[str, list[Any]]:
        """Return the SQL text (qmark style) and positional arguments of a statement.

        A statement that SQLAlchemy cannot key (DDL among them), or whose
        parameters are rendered into the SQL text at execution time (an
        expanding ``IN`` list, a ``literal_execute`` parameter), is compiled in
        full on every call.
        """
        cache_key = statement._generate_cache_key()
        if cache_key is None:
            return _compile_uncached(statement)

        entry = self._entries.get(cache_key.key)
        if entry is None:
            entry = self._compile_shape(statement, cache_key)
            self._entries[cache_key.key] = entry
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(cache_key.key)

        if entry is _UNCACHEABLE:
            return _compile_uncached(statement)
        compiled = cast("SQLCompiler", entry)
        # The cached compiled form names the bound parameters of the statement that
        # was compiled first; this statement's values take their places in order.
        params = compiled.construct_params(extracted_parameters=cache_key.bindparams)
        return compiled.string, _positional(compiled, params)

    @staticmethod
    def _compile_shape(statement: ClauseElement, cache_key: Any) -> object:
        compiled = cast("SQLCompiler", statement.compile(dialect=DIALECT, cache_key=cache_key))
        if compiled.post_compile_params or compiled.literal_execute_params:
            return _UNCACHEABLE
        return compiled


_CACHE = StatementCache()


def compile_statement(statement: ClauseElement) -> tuple[str, list[Any]]:
    """Return the SQL text (qmark style) and positional arguments of a statement.

    Compiled shapes are reused from a process-wide ``StatementCache``.
    """
    return _CACHE.compile(statement)
