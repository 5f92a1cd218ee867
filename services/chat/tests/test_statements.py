"""The chat service's compiled statement cache: one compile per statement shape, each
statement's own arguments, DDL and expanding IN lists compiled in full, and a bounded size.
Statements compiled once: each run's values in place, no value missing or unknown, and the
chat turn's statements equal to the ones built on every call before."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from portfolio_chat.sessions import repository
from portfolio_chat.sessions.schema import chat_messages, chat_sessions
from portfolio_chat.sessions.statements import (
    DIALECT,
    BoundStatement,
    CompiledStatement,
    StatementCache,
    compile_statement,
)
from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.schema import CreateIndex, CreateTable

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.sql.compiler import SQLCompiler
    from sqlalchemy.sql.expression import ClauseElement


def compile_plainly(statement: ClauseElement) -> tuple[str, list[Any]]:
    """The SQL text and arguments of a full compile, with no cache involved."""
    compiled: SQLCompiler = statement.compile(  # type: ignore[assignment]
        dialect=DIALECT, compile_kwargs={"render_postcompile": True}
    )
    params = compiled.params
    return compiled.string, [params[name] for name in compiled.positiontup or ()]


def new_message(session_id: str, content: str) -> ClauseElement:
    """The insert of one message, built whole."""
    next_seq = (
        select(func.coalesce(func.max(chat_messages.c.seq), 0) + 1)
        .where(chat_messages.c.session_id == session_id)
        .scalar_subquery()
    )
    return insert(chat_messages).values(
        id=f"msg_{content}",
        session_id=session_id,
        role="user",
        content=content,
        tokens_used=None,
        model=None,
        created_at="2025-03-01T10:00:00.000Z",
        seq=next_seq,
    )


def bumped_session(session_id: str, added: int) -> ClauseElement:
    return (
        update(chat_sessions)
        .where(chat_sessions.c.id == session_id)
        .values(message_count=chat_sessions.c.message_count + added, last_active_at=session_id)
    )


def newest_messages(session_id: str, limit: int) -> ClauseElement:
    return (
        select(chat_messages)
        .where(chat_messages.c.session_id == session_id)
        .order_by(chat_messages.c.seq.desc())
        .limit(limit)
    )


@pytest.mark.parametrize(
    ("build", "first", "second"),
    [
        (new_message, ("sess_a", "hello"), ("sess_b", "bye")),
        (bumped_session, ("sess_a", 1), ("sess_b", 2)),
        (newest_messages, ("sess_a", 20), ("sess_b", 5)),
    ],
)
def test_same_shape_compiles_once(
    build: Callable[..., ClauseElement], first: tuple[Any, ...], second: tuple[Any, ...]
) -> None:
    cache = StatementCache()

    compiled_first = cache.compile(build(*first))
    compiled_second = cache.compile(build(*second))

    assert len(cache) == 1
    assert compiled_first == compile_plainly(build(*first))
    assert compiled_second == compile_plainly(build(*second))


def test_message_insert_arguments_follow_placeholders() -> None:
    cache = StatementCache()
    cache.compile(new_message("sess_a", "hello"))

    _, args = cache.compile(new_message("sess_b", "bye"))

    # The row's values, then the subquery's: coalesce default, increment, session id.
    assert args == [
        "msg_bye",
        "sess_b",
        "user",
        "bye",
        None,
        None,
        "2025-03-01T10:00:00.000Z",
        0,
        1,
        "sess_b",
    ]


@pytest.mark.parametrize(
    "statement",
    [
        CreateTable(chat_sessions, if_not_exists=True),
        CreateIndex(next(iter(chat_messages.indexes)), if_not_exists=True),
    ],
    ids=["table", "index"],
)
def test_ddl_compiles_without_arguments(statement: ClauseElement) -> None:
    cache = StatementCache()

    sql, args = cache.compile(statement)

    assert sql.lstrip().startswith("CREATE ")
    assert "IF NOT EXISTS" in sql
    assert args == []


@pytest.mark.parametrize("ids", [["sess_a"], ["sess_a", "sess_b", "sess_c"], []])
def test_in_lists_of_any_length(ids: list[str]) -> None:
    cache = StatementCache()
    cache.compile(select(chat_sessions).where(chat_sessions.c.id.in_(["sess_x", "sess_y"])))
    statement = select(chat_sessions).where(chat_sessions.c.id.in_(ids))

    assert cache.compile(statement) == compile_plainly(statement)


def test_cache_evicts_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = StatementCache(size=2)
    compiled_shapes: list[str] = []
    compile_shape = StatementCache._compile_shape

    def recording(statement: ClauseElement, cache_key: Any) -> object:
        compiled_shapes.append(str(statement).split()[0])
        return compile_shape(statement, cache_key)

    monkeypatch.setattr(StatementCache, "_compile_shape", staticmethod(recording))

    cache.compile(newest_messages("sess_a", 1))
    cache.compile(bumped_session("sess_a", 1))
    cache.compile(newest_messages("sess_b", 2))
    cache.compile(new_message("sess_a", "hello"))
    cache.compile(newest_messages("sess_c", 3))
    cache.compile(bumped_session("sess_b", 2))

    assert len(cache) == 2
    assert compiled_shapes == ["SELECT", "UPDATE", "INSERT", "UPDATE"]


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StatementCache(size=0)


def reusable_session(visitor_id: str, now: str) -> ClauseElement:
    return (
        select(chat_sessions)
        .where(
            and_(
                chat_sessions.c.visitor_id == visitor_id,
                chat_sessions.c.status == "active",
                chat_sessions.c.expires_at > now,
            )
        )
        .order_by(chat_sessions.c.created_at.desc())
        .limit(1)
    )


@pytest.mark.parametrize("visitor_id", ["v1", "v2"])
def test_compiled_reusable_session_matches_built_one(visitor_id: str) -> None:
    bound = repository._REUSABLE_SESSION.bind(visitor_id=visitor_id, now="2025-03-01")

    assert tuple(bound) == compile_plainly(reusable_session(visitor_id, "2025-03-01"))


@pytest.mark.parametrize("session_id", ["sess_a", "sess_b"])
def test_compiled_session_by_id_matches_built_one(session_id: str) -> None:
    bound = repository._SESSION_BY_ID.bind(id=session_id)

    built = select(chat_sessions).where(chat_sessions.c.id == session_id)
    assert tuple(bound) == compile_plainly(built)


@pytest.mark.parametrize(("session_id", "content"), [("sess_a", "hello"), ("sess_b", "bye")])
def test_compiled_new_message_matches_built_one(session_id: str, content: str) -> None:
    bound = repository._NEW_MESSAGE.bind(
        message_id=f"msg_{content}",
        message_session_id=session_id,
        message_role="user",
        message_content=content,
        message_tokens_used=None,
        message_created_at="2025-03-01T10:00:00.000Z",
    )

    assert tuple(bound) == compile_plainly(new_message(session_id, content))


@pytest.mark.parametrize(("session_id", "added"), [("sess_a", 1), ("sess_b", 2)])
def test_compiled_session_activity_matches_built_one(session_id: str, added: int) -> None:
    bound = repository._SESSION_ACTIVITY.bind(session=session_id, added=added, active_at=session_id)

    assert tuple(bound) == compile_plainly(bumped_session(session_id, added))


def test_compiled_statement_names_its_parameters() -> None:
    compiled = CompiledStatement(select(chat_sessions).where(chat_sessions.c.id == bindparam("id")))

    assert compiled.names == frozenset({"id"})


@pytest.mark.parametrize("values", [{}, {"id": "sess_a", "other": 1}, {"other": 1}], ids=repr)
def test_compiled_statement_rejects_other_parameters(values: dict[str, Any]) -> None:
    compiled = CompiledStatement(select(chat_sessions).where(chat_sessions.c.id == bindparam("id")))

    with pytest.raises(ValueError, match="requires values for exactly id"):
        compiled.bind(**values)


def test_compiled_statement_rejects_an_expanding_in_list() -> None:
    with pytest.raises(ValueError, match="expanding IN list"):
        CompiledStatement(
            select(chat_sessions).where(chat_sessions.c.id.in_(bindparam("ids", expanding=True)))
        )


def test_bound_statement_compiles_to_itself() -> None:
    bound = BoundStatement("SELECT ?", ["value"])

    assert compile_statement(bound) == ("SELECT ?", ["value"])
