"""Stored sessions and messages: the admin view and the source of truth for history.

Rows are returned in the HTTP contract's shapes (camelCase keys, contract
timestamps). A session is reused by its visitor while it is ``active`` and
not past ``expiresAt``; the expiry sweep turns overdue ``active`` rows into
``expired``; ending a session makes it ``ended`` for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from portfolio_shared.ids import new_id
from portfolio_shared.sql.statements import CompiledStatement
from portfolio_shared.timeutil import format_timestamp, utc_now
from sqlalchemy import and_, bindparam, func, insert, select, update

from portfolio_chat.sessions.schema import chat_messages, chat_sessions

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.sql.elements import BindParameter

    from portfolio_chat.sessions.database import ChatDatabase

__all__ = ["NewMessage", "SessionRepository", "message_view", "session_view"]

SESSION_STATUSES = ("active", "ended", "expired")
MESSAGES_PER_SESSION_VIEW = 100
"""Messages returned with one session in the admin view (the first ones, oldest first)."""


# The statements of every chat turn, compiled once. Their bind parameter names differ
# from the column names, which SQLAlchemy keeps for the VALUES and SET clauses.

_REUSABLE_SESSION = CompiledStatement(
    select(chat_sessions)
    .where(
        and_(
            chat_sessions.c.visitor_id == bindparam("visitor_id"),
            chat_sessions.c.status == "active",
            chat_sessions.c.expires_at > bindparam("now"),
        )
    )
    .order_by(chat_sessions.c.created_at.desc())
    .limit(1)
)
"""The visitor's newest active session that expires after ``now``."""

_SESSION_BY_ID = CompiledStatement(
    select(chat_sessions).where(chat_sessions.c.id == bindparam("id"))
)

_message_session_id: BindParameter[str] = bindparam("message_session_id")

_NEW_MESSAGE = CompiledStatement(
    insert(chat_messages).values(
        id=bindparam("message_id"),
        session_id=_message_session_id,
        role=bindparam("message_role"),
        content=bindparam("message_content"),
        tokens_used=bindparam("message_tokens_used"),
        model=None,
        created_at=bindparam("message_created_at"),
        seq=select(func.coalesce(func.max(chat_messages.c.seq), 0) + 1)
        .where(chat_messages.c.session_id == _message_session_id)
        .scalar_subquery(),
    )
)
"""One message, numbered after the last ``seq`` of its session."""

_SESSION_ACTIVITY = CompiledStatement(
    update(chat_sessions)
    .where(chat_sessions.c.id == bindparam("session"))
    .values(
        message_count=chat_sessions.c.message_count + bindparam("added"),
        last_active_at=bindparam("active_at"),
    )
)
"""The bump of a session's message count and activity time after ``added`` messages."""


@dataclass(frozen=True)
class NewMessage:
    role: str
    content: str
    tokens_used: int | None = None


def session_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "visitorId": row["visitor_id"],
        "ipHash": row["ip_hash"],
        "userAgent": row["user_agent"],
        "messageCount": row["message_count"],
        "status": row["status"],
        "createdAt": row["created_at"],
        "lastActiveAt": row["last_active_at"],
        "expiresAt": row["expires_at"],
    }


def message_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sessionId": row["session_id"],
        "role": row["role"],
        "content": row["content"],
        "tokensUsed": row["tokens_used"],
        "model": row["model"],
        "createdAt": row["created_at"],
    }


class SessionRepository:
    """Sessions and messages in the chat database."""

    def __init__(self, database: ChatDatabase, *, max_age_s: int) -> None:
        self.database = database
        self.max_age = timedelta(seconds=max_age_s)

    async def find_reusable(self, visitor_id: str, now: datetime) -> dict[str, Any] | None:
        """Return the visitor's newest active session that has not expired, if any."""
        rows = await self.database.fetch_all(
            _REUSABLE_SESSION.bind(visitor_id=visitor_id, now=format_timestamp(now))
        )
        return rows[0] if rows else None

    async def get(self, session_id: str) -> dict[str, Any] | None:
        rows = await self.database.fetch_all(_SESSION_BY_ID.bind(id=session_id))
        return rows[0] if rows else None

    async def create(
        self, *, visitor_id: str, ip_hash: str, user_agent: str | None, now: datetime
    ) -> dict[str, Any]:
        stamp = format_timestamp(now)
        row = {
            "id": new_id("sess"),
            "visitor_id": visitor_id,
            "ip_hash": ip_hash,
            "user_agent": user_agent,
            "message_count": 0,
            "status": "active",
            "created_at": stamp,
            "last_active_at": stamp,
            "expires_at": format_timestamp(now + self.max_age),
        }
        await self.database.execute(insert(chat_sessions).values(**row))
        return row

    async def add_messages(
        self, session_id: str, messages: list[NewMessage], now: datetime
    ) -> list[dict[str, Any]]:
        """Store messages and bump the session's count and activity time in one transaction."""
        stamp = format_timestamp(now)
        rows = [
            {
                "id": new_id("msg"),
                "session_id": session_id,
                "role": message.role,
                "content": message.content,
                "tokens_used": message.tokens_used,
                "model": None,
                "created_at": stamp,
            }
            for message in messages
        ]
        statements = [
            _NEW_MESSAGE.bind(
                message_id=row["id"],
                message_session_id=session_id,
                message_role=row["role"],
                message_content=row["content"],
                message_tokens_used=row["tokens_used"],
                message_created_at=stamp,
            )
            for row in rows
        ]
        statements.append(
            _SESSION_ACTIVITY.bind(session=session_id, added=len(rows), active_at=stamp)
        )
        await self.database.batch(statements)
        return rows

    async def messages(
        self, session_id: str, *, limit: int = MESSAGES_PER_SESSION_VIEW, newest: bool = False
    ) -> list[dict[str, Any]]:
        """Return up to ``limit`` messages oldest first: the first ones, or with ``newest``
        the last ones."""
        order = chat_messages.c.seq.desc() if newest else chat_messages.c.seq.asc()
        rows = await self.database.fetch_all(
            select(chat_messages)
            .where(chat_messages.c.session_id == session_id)
            .order_by(order)
            .limit(limit)
        )
        return list(reversed(rows)) if newest else rows

    async def list_sessions(
        self, *, status: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        query = select(chat_sessions)
        if status is not None:
            query = query.where(chat_sessions.c.status == status)
        query = (
            query.order_by(chat_sessions.c.last_active_at.desc(), chat_sessions.c.id)
            .limit(limit)
            .offset(offset)
        )
        return await self.database.fetch_all(query)

    async def end(self, session_id: str, now: datetime) -> bool:
        """Mark a session ended; return whether it was active before (False if absent too)."""
        session = await self.get(session_id)
        if session is None:
            return False
        await self.database.execute(
            update(chat_sessions)
            .where(chat_sessions.c.id == session_id)
            .values(status="ended", last_active_at=format_timestamp(now))
        )
        return bool(session["status"] == "active")

    async def expire_overdue(self, now: datetime | None = None) -> int:
        """Mark active sessions past ``expiresAt`` as expired; return how many changed."""
        result = await self.database.execute(
            update(chat_sessions)
            .where(
                and_(
                    chat_sessions.c.status == "active",
                    chat_sessions.c.expires_at <= format_timestamp(now or utc_now()),
                )
            )
            .values(status="expired")
        )
        return int(result.rows_affected)
