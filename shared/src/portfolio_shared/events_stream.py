"""The JetStream stream that keeps every event, created or updated idempotently.

Publishers (the content service's outbox relay, the cache flush command) and
consumers (every gateway replica, the chat service) call ``ensure_events_stream``
at startup, so whichever starts first creates it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

    from portfolio_shared.contract.subjects import Subjects

__all__ = ["DUPLICATE_WINDOW_S", "EVENT_RETENTION_S", "ensure_events_stream"]

log = get_logger("events")

EVENT_RETENTION_S = 7 * 24 * 3600
"""How long events stay in the stream for replay, in seconds."""

DUPLICATE_WINDOW_S = 10 * 60
"""Window in which a republished event id is dropped as a duplicate, in seconds."""


async def ensure_events_stream(js: JetStreamContext, subjects: Subjects) -> None:
    """Create the events stream, or update it to this configuration if it exists."""
    config = StreamConfig(
        name=subjects.events_stream,
        subjects=[subjects.events_all],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=EVENT_RETENTION_S,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_msgs=1_000_000,
    )
    try:
        await js.stream_info(subjects.events_stream)
    except NotFoundError:
        try:
            await js.add_stream(config)
            log.info("events stream created", stream=subjects.events_stream)
            return
        except BadRequestError:
            # Another process created it between the lookup and the add.
            pass
    await js.update_stream(config)
