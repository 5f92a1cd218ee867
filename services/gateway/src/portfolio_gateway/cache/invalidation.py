"""Every replica's consumer of the events stream, dropping exactly the cache entries a change affects.

Each gateway worker has its own ephemeral ordered JetStream consumer on the
events stream, starting after the stream's last message at startup, so every
replica receives every ``ContentChanged`` and ``CacheFlushed``.

No lost invalidation: the cache is *synced* only while NATS is connected and
the consumer is running. On startup and after every reconnect the listener
resubscribes from the sequence after the last event it applied (replaying what
it missed while disconnected) and clears the cache before marking it synced
again, so nothing cached before the gap is served as fresh. While not synced,
public reads do not answer from the cache (except as stale when the content
service cannot be reached).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import msgspec
from nats.js.api import ConsumerConfig, DeliverPolicy
from portfolio_shared.contract import CacheFlushed, ContentChanged, decode_event
from portfolio_shared.events_stream import ensure_events_stream
from portfolio_shared.logging import get_logger

from portfolio_gateway.cache.keys import affected_keys

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext
    from portfolio_shared.contract import Subjects
    from portfolio_shared.nats_client import NatsClient

    from portfolio_gateway.cache.store import ResponseCache

__all__ = ["RESYNC_RETRY_S", "InvalidationListener"]

log = get_logger("gateway.invalidation")

RESYNC_RETRY_S = 0.5
"""Pause between attempts to resubscribe after a failure, in seconds."""


class InvalidationListener:
    """Applies content events to one worker's cache (see the module docstring)."""

    def __init__(self, nats: NatsClient, subjects: Subjects, cache: ResponseCache) -> None:
        self._nats = nats
        self._subjects = subjects
        self._cache = cache
        self._js: JetStreamContext = nats.jetstream()
        self._subscription: object | None = None
        self._last_sequence = 0
        self._synced = False
        self._synced_connection = -1
        """nats-py's reconnect count when the last resync began; another count means unsynced."""
        self._resync_task: asyncio.Task[None] | None = None
        self._applied = asyncio.Condition()
        self._closed = False

    @property
    def synced(self) -> bool:
        """Return whether cached entries may be served as fresh: connected, subscribed, caught up.

        nats-py reports a new connection as connected (and counts it in
        ``stats["reconnects"]``) before it calls the reconnected callback, so the
        count, not only the flag, distinguishes a resynced connection from a new one.
        """
        return (
            self._synced
            and self._nats.is_connected
            and self._nats.stats["reconnects"] == self._synced_connection
        )

    @property
    def last_sequence(self) -> int:
        """Stream sequence of the last event applied (0 before the first)."""
        return self._last_sequence

    async def start(self) -> None:
        """Subscribe from the current end of the stream and clear the cache."""
        await self._resync(initial=True)

    def on_reconnected(self) -> None:
        """Mark the cache unsynced at once and resubscribe in the background."""
        self._synced = False
        if self._closed:
            return
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.get_running_loop().create_task(self._resync_until_done())

    async def reconnected_hook(self) -> None:
        """Call ``on_reconnected``; the coroutine form ``ServiceRuntime.on_reconnected`` expects."""
        self.on_reconnected()

    async def wait_for_sequence(self, sequence: int, timeout_s: float) -> bool:
        """Wait until the event at ``sequence`` is applied; return whether it was in time."""

        async def reached() -> None:
            async with self._applied:
                await self._applied.wait_for(lambda: self._last_sequence >= sequence)

        try:
            await asyncio.wait_for(reached(), timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self._closed = True
        self._synced = False
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._resync_task
        await self._unsubscribe()

    # Subscribing

    async def _resync_until_done(self) -> None:
        # A reconnect while a resync runs starts no second task, so the loop goes on
        # until a resync completed on the connection that is current when it ends.
        while not self._closed:
            try:
                await self._resync(initial=False)
            except Exception as error:
                log.warning(
                    "events resubscription failed, retrying",
                    error=str(error) or type(error).__name__,
                )
                await asyncio.sleep(RESYNC_RETRY_S)
                continue
            if self._nats.stats["reconnects"] == self._synced_connection:
                return

    async def _resync(self, *, initial: bool) -> None:
        self._synced = False
        connection = self._nats.stats["reconnects"]
        await ensure_events_stream(self._js, self._subjects)
        info = await self._js.stream_info(self._subjects.events_stream)
        stream_last = info.state.last_seq
        if initial or stream_last < self._last_sequence:
            # First start, or the stream was recreated: begin after its current end.
            self._last_sequence = stream_last
        await self._unsubscribe()
        self._subscription = await self._js.subscribe(
            self._subjects.events_all,
            stream=self._subjects.events_stream,
            cb=self._on_message,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self._last_sequence + 1,
            ),
        )
        await self._cache.clear(reason="resync")
        self._synced_connection = connection
        self._synced = True
        log.info(
            "cache invalidation subscribed",
            stream=self._subjects.events_stream,
            from_sequence=self._last_sequence + 1,
            initial=initial,
        )

    async def _unsubscribe(self) -> None:
        subscription = self._subscription
        self._subscription = None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()  # type: ignore[attr-defined]

    # Applying events

    async def _on_message(self, msg: Msg) -> None:
        sequence = msg.metadata.sequence.stream
        if sequence <= self._last_sequence:
            return
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError:
            log.warning("unknown event skipped", subject=msg.subject, sequence=sequence)
        else:
            try:
                await self.apply(event)
            except Exception:
                # An invalidation that failed half-way must not leave stale entries behind.
                log.exception("applying an event failed, clearing the cache", sequence=sequence)
                await self._cache.clear(reason="apply_failed")
        async with self._applied:
            self._last_sequence = sequence
            self._applied.notify_all()

    async def apply(self, event: ContentChanged | CacheFlushed) -> None:
        """Drop what ``event`` makes stale: the affected keys, or everything on a flush."""
        if isinstance(event, ContentChanged):
            await self._cache.invalidate(affected_keys(event), reason="content_changed")
            log.info(
                "cache invalidated",
                content_id=event.content_id,
                content_type=event.content_type,
                slug=event.slug,
                version=event.version,
                change=event.change.value,
                event_id=event.event_id,
            )
        else:
            await self._cache.clear(reason="flush")
            log.info("cache flushed", event_id=event.event_id, requested_by=event.requested_by)
