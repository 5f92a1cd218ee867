"""Tables of the chat service: sessions and their messages (SQLAlchemy Core)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

__all__ = ["chat_messages", "chat_sessions", "metadata"]

metadata = MetaData()

chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String, primary_key=True),
    Column("visitor_id", String, nullable=False),
    Column("ip_hash", String, nullable=False),
    Column("user_agent", String, nullable=True),
    Column("message_count", Integer, nullable=False, default=0),
    Column("status", String, nullable=False),
    Column("created_at", String, nullable=False),
    Column("last_active_at", String, nullable=False),
    Column("expires_at", String, nullable=False),
    Index("ix_chat_sessions_visitor", "visitor_id", "status", "created_at"),
    Index("ix_chat_sessions_last_active", "last_active_at"),
)
"""One row per session; timestamps are contract strings (ISO-8601 UTC with ms), which sort
in time order."""

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", String, primary_key=True),
    Column("session_id", String, ForeignKey("chat_sessions.id"), nullable=False),
    Column("role", String, nullable=False),
    Column("content", Text, nullable=False),
    Column("tokens_used", Integer, nullable=True),
    Column("model", String, nullable=True),
    Column("created_at", String, nullable=False),
    Column("seq", Integer, nullable=False),
    Index("ix_chat_messages_session", "session_id", "seq"),
)
"""Messages of every session; ``seq`` orders messages written in the same millisecond."""
