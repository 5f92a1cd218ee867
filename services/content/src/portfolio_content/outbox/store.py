"""Outbox rows: one encoded event per committed change, written in the change's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from portfolio_shared.contract.events import encode_event
from portfolio_shared.timeutil import format_timestamp, utc_now

from portfolio_content.db.schema import outbox

if TYPE_CHECKING:
    from portfolio_shared.contract.events import Event

    from portfolio_content.db.database import Database, Transaction

__all__ = ["PendingEvent", "count_pending", "enqueue", "mark_sent", "pending_events", "purge_sent"]


@dataclass(frozen=True)
class PendingEvent:
    seq: int
    event_id: str
    payload: bytes


async def enqueue(transaction: Transaction, event: Event) -> None:
    await transaction.execute(
        sa.insert(outbox).values(
            event_id=event.event_id,
            payload=encode_event(event).decode(),
            created_at=format_timestamp(utc_now()),
        )
    )


async def pending_events(database: Database, *, limit: int = 100) -> list[PendingEvent]:
    """Unsent events, oldest first."""
    rows = await database.fetch_all(
        sa.select(outbox.c.seq, outbox.c.event_id, outbox.c.payload)
        .where(outbox.c.sent_at.is_(None))
        .order_by(outbox.c.seq)
        .limit(limit),
        name="outbox read",
    )
    return [PendingEvent(row["seq"], row["event_id"], row["payload"].encode()) for row in rows]


async def count_pending(database: Database) -> int:
    row = await database.fetch_one(
        sa.select(sa.func.count().label("pending")).where(outbox.c.sent_at.is_(None)),
        name="outbox count",
    )
    return int(row["pending"]) if row else 0


async def mark_sent(database: Database, seq: int) -> None:
    async def work(transaction: Transaction) -> None:
        await transaction.execute(
            sa.update(outbox)
            .where(outbox.c.seq == seq, outbox.c.sent_at.is_(None))
            .values(sent_at=format_timestamp(utc_now()), attempts=outbox.c.attempts + 1)
        )

    await database.transaction(work, name="outbox mark sent")


async def purge_sent(database: Database, *, older_than_s: int) -> int:
    cutoff = format_timestamp(utc_now() - timedelta(seconds=older_than_s))

    async def work(transaction: Transaction) -> int:
        return await transaction.execute(
            sa.delete(outbox).where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff)
        )

    return await database.transaction(work, name="outbox purge")
