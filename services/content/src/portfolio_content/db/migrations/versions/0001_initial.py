"""Create content, content_history, outbox and idempotency_keys.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("data", sa.Text(), nullable=False, comment="JSON object"),
        sa.Column("status", sa.String(16), server_default="draft", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.String(24), nullable=False),
        sa.Column("updated_at", sa.String(24), nullable=False),
        sa.Column("deleted_at", sa.String(24), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_content"),
        sa.UniqueConstraint("type", "slug", name="uq_content_type_slug"),
    )
    op.create_index(
        "ix_content_status_deleted_at_sort_order",
        "content",
        ["status", "deleted_at", "sort_order"],
    )
    op.create_table(
        "content_history",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("content_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False, comment="JSON object of this version"),
        sa.Column("change_type", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("change_summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_content_history"),
        sa.UniqueConstraint("content_id", "version", name="uq_content_history_content_id_version"),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False, comment="encoded event"),
        sa.Column("created_at", sa.String(24), nullable=False),
        sa.Column("sent_at", sa.String(24), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_sent_at_seq", "outbox", ["sent_at", "seq"])
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False, comment="operation and content id"),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, comment="JSON reply body"),
        sa.Column("headers", sa.Text(), nullable=False, comment="JSON object of reply headers"),
        sa.Column("created_at", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_outbox_sent_at_seq", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("content_history")
    op.drop_index("ix_content_status_deleted_at_sort_order", table_name="content")
    op.drop_table("content")
