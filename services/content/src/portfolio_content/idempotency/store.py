"""Idempotency keys, stored in the same transaction as the change they guard.

A key is scoped by operation and content id (``create``, ``update:<id>``,
``delete:<id>``, ``restore:<id>``) and remembers a SHA-256 of the request
(body and the parts of the query and headers that change the outcome) with
the reply that was sent. Because the key row commits or rolls back with the
change, a crash mid-write leaves neither, and a restart keeps both. Two
concurrent requests with one key serialize on the database's write lock: the
second one re-runs after the first commits, finds the key and replays.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from portfolio_shared.contract import HttpReply
from portfolio_shared.errors import ConflictError, ValidationFailedError
from portfolio_shared.timeutil import format_timestamp, utc_now

from portfolio_content.db.schema import idempotency_keys

if TYPE_CHECKING:
    from portfolio_content.db.database import Database, Transaction

__all__ = [
    "MAX_KEY_LENGTH",
    "IdempotencyClaim",
    "find_reply",
    "purge_expired",
    "request_fingerprint",
    "save_reply",
]

MAX_KEY_LENGTH = 255
"""Longest accepted ``Idempotency-Key``, in characters."""


def request_fingerprint(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of the request parts (key order does not matter)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class IdempotencyClaim:
    """One request's key, its scope and the fingerprint of what it asked for."""

    scope: str
    key: str
    fingerprint: str

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > MAX_KEY_LENGTH:
            raise ValidationFailedError(
                "Invalid Idempotency-Key",
                fields={
                    "Idempotency-Key": [
                        f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long"
                    ]
                },
            )


async def find_reply(
    transaction: Transaction, claim: IdempotencyClaim, *, ttl_s: int
) -> HttpReply | None:
    """Return the stored reply for ``claim`` marked as replayed, or None if there is none.

    A stored reply for a different request is a 409; an expired one is deleted
    and treated as absent.
    """
    row = await transaction.fetch_one(
        sa.select(idempotency_keys).where(
            idempotency_keys.c.scope == claim.scope, idempotency_keys.c.key == claim.key
        )
    )
    if row is None:
        return None
    expires = format_timestamp(utc_now() - timedelta(seconds=ttl_s))
    if row["created_at"] < expires:
        await transaction.execute(
            sa.delete(idempotency_keys).where(
                idempotency_keys.c.scope == claim.scope, idempotency_keys.c.key == claim.key
            )
        )
        return None
    if row["request_hash"] != claim.fingerprint:
        raise ConflictError(
            f"Idempotency-Key '{claim.key}' was already used for a different request; "
            "send a new key for a new request"
        )
    return HttpReply(
        status=row["status"],
        body=json.loads(row["body"]),
        headers=json.loads(row["headers"]),
        replayed=True,
    )


async def save_reply(transaction: Transaction, claim: IdempotencyClaim, reply: HttpReply) -> None:
    await transaction.execute(
        sa.insert(idempotency_keys).values(
            scope=claim.scope,
            key=claim.key,
            request_hash=claim.fingerprint,
            status=reply.status,
            body=json.dumps(reply.body, ensure_ascii=False),
            headers=json.dumps(reply.headers),
            created_at=format_timestamp(utc_now()),
        )
    )


async def purge_expired(database: Database, *, ttl_s: int) -> int:
    """Delete keys older than ``ttl_s``; returns how many."""
    cutoff = format_timestamp(utc_now() - timedelta(seconds=ttl_s))

    async def work(transaction: Transaction) -> int:
        return await transaction.execute(
            sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff)
        )

    return await database.transaction(work, name="idempotency purge")
