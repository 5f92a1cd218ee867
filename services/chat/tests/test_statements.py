"""The chat turn's statements, compiled once: each run's values give the SQL text and
arguments of the same statement built and compiled in full."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from portfolio_chat.sessions import repository
from portfolio_chat.sessions.schema import chat_messages, chat_sessions
from portfolio_shared.sql.statements import compile_in_full
from sqlalchemy import and_, func, insert, select, update

if TYPE_CHECKING:
    from sqlalchemy.sql.expression import ClauseElement


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

    assert tuple(bound) == compile_in_full(reusable_session(visitor_id, "2025-03-01"))


@pytest.mark.parametrize("session_id", ["sess_a", "sess_b"])
def test_compiled_session_by_id_matches_built_one(session_id: str) -> None:
    bound = repository._SESSION_BY_ID.bind(id=session_id)

    built = select(chat_sessions).where(chat_sessions.c.id == session_id)
    assert tuple(bound) == compile_in_full(built)


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

    assert tuple(bound) == compile_in_full(new_message(session_id, content))


@pytest.mark.parametrize(("session_id", "added"), [("sess_a", 1), ("sess_b", 2)])
def test_compiled_session_activity_matches_built_one(session_id: str, added: int) -> None:
    bound = repository._SESSION_ACTIVITY.bind(session=session_id, added=added, active_at=session_id)

    assert tuple(bound) == compile_in_full(bumped_session(session_id, added))
