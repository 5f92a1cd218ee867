"""Events: facts that happened, published to the JetStream events stream.

Every event has a unique ``eventId``, used as the JetStream message id so that
a retried publish is stored once.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

__all__ = ["CacheFlushed", "ChangeKind", "ContentChanged", "Event", "decode_event", "encode_event"]


class ChangeKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    """Soft delete: the row stays, hidden from public reads."""
    HARD_DELETED = "hard_deleted"
    RESTORED = "restored"


class ContentChanged(
    msgspec.Struct, kw_only=True, rename="camel", tag="content.changed.v1", tag_field="schema"
):
    """A content item was committed in a new state.

    ``previous_slug`` and ``previous_status`` let a cache drop entries the item
    appeared under before the change.
    """

    event_id: str
    content_id: str
    content_type: str
    slug: str
    version: int
    change: ChangeKind
    status: str
    occurred_at: str
    previous_slug: str | None = None
    previous_status: str | None = None


class CacheFlushed(
    msgspec.Struct, kw_only=True, rename="camel", tag="cache.flush.v1", tag_field="schema"
):
    """An operator asked every gateway replica to drop its whole content cache."""

    event_id: str
    requested_by: str
    """Fingerprint of the admin key that asked, or ``cli``."""

    occurred_at: str


Event = ContentChanged | CacheFlushed

_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


def decode_event(payload: bytes) -> Event:
    """Decode any event by its ``schema`` tag; raises ``msgspec.DecodeError`` on anything else."""
    return _decoder.decode(payload)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)
