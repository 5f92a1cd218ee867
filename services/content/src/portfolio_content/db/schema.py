"""Tables of the content service, defined with SQLAlchemy Core.

JSON values (``data``, ``payload``, ``body``) are stored as JSON text in TEXT
columns and encoded by the code that writes them. Timestamps are contract
strings (``2025-03-01T10:00:00.000Z``), which sort in time order. Alembic
autogenerates migrations from ``metadata``.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["content", "content_history", "idempotency_keys", "metadata", "outbox"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

content = sa.Table(
    "content",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("slug", sa.String(100), nullable=False),
    sa.Column("data", sa.Text, nullable=False, comment="JSON object"),
    sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("sort_order", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.String(24), nullable=False),
    sa.Column("updated_at", sa.String(24), nullable=False),
    sa.Column("deleted_at", sa.String(24), nullable=True),
    # A slug stays reserved after a soft delete: there is no undelete.
    sa.UniqueConstraint("type", "slug"),
    sa.Index(None, "status", "deleted_at", "sort_order"),
)

content_history = sa.Table(
    "content_history",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("content_id", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False, comment="JSON object of this version"),
    sa.Column("change_type", sa.String(16), nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("change_summary", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(24), nullable=False),
    # One entry per version of an item.
    sa.UniqueConstraint("content_id", "version"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(40), nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False, comment="encoded event"),
    sa.Column("created_at", sa.String(24), nullable=False),
    sa.Column("sent_at", sa.String(24), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "sent_at", "seq"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True, comment="operation and content id"),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False, comment="JSON reply body"),
    sa.Column("headers", sa.Text, nullable=False, comment="JSON object of reply headers"),
    sa.Column("created_at", sa.String(24), nullable=False),
    sa.Index(None, "created_at"),
)
