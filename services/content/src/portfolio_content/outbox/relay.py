"""The outbox relay: publishes unsent outbox events to JetStream until each is acknowledged.

Every replica runs one relay. It wakes when its own replica commits a change
and otherwise polls, so events written by other replicas (or left by a crash)
go out too. Each event is published with ``Nats-Msg-Id`` = its event id, so
when two relays or a retry publish the same row, the stream stores it once.
While NATS or the stream is unavailable the rows stay unsent and the relay
retries with a bounded backoff, so an outage delays events but does not drop
them (a row is marked sent only after the stream acknowledged it).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from portfolio_shared.contract.events import CacheFlushed, decode_event
from portfolio_shared.events_stream import ensure_events_stream
from portfolio_shared.logging import get_logger
from prometheus_client import Counter, Gauge

from portfolio_content.outbox import store

if TYPE_CHECKING:
    from portfolio_shared.contract.subjects import Subjects
    from portfolio_shared.nats_client import NatsClient

    from portfolio_content.db.database import Database

__all__ = ["PUBLISH_TIMEOUT_S", "OutboxRelay"]

log = get_logger("content.outbox")

PUBLISH_TIMEOUT_S = 2.0
"""How long one publish waits for the stream's acknowledgement, in seconds."""

_MAX_BACKOFF_S = 5.0
_STOP_TIMEOUT_S = 5.0
_SENT_RETENTION_S = 24 * 3600
_PURGE_EVERY_S = 600.0

OUTBOX_PUBLISHED = Counter(
    "outbox_events_published_total", "Outbox events acknowledged by the events stream."
)
OUTBOX_FAILURES = Counter(
    "outbox_publish_failures_total", "Failed attempts to publish an outbox event."
)
OUTBOX_PENDING = Gauge("outbox_events_pending", "Outbox events not yet acknowledged.")


class OutboxRelay:
    """Background task that empties the outbox into the events stream."""

    def __init__(
        self,
        database: Database,
        subjects: Subjects,
        *,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._database = database
        self._client: NatsClient | None = None
        self._subjects = subjects
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._stream_ready = False
        self._last_purge = 0.0

    def wake(self) -> None:
        """Ask the relay to look at the outbox now (after a commit)."""
        self._wake.set()

    async def wake_async(self) -> None:
        """``wake`` as a coroutine, for NATS reconnect hooks."""
        self.wake()

    def start(self, client: NatsClient) -> None:
        """Start relaying over ``client`` in a background task."""
        self._client = client
        self._stopped = False
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop the background task; a publish in progress is abandoned (its row stays unsent)."""
        task, self._task = self._task, None
        self._stopped = True
        self._wake.set()
        if task is None:
            return
        task.cancel()
        # The NATS client can absorb a cancellation; the stop flag ends the loop then.
        done, _ = await asyncio.wait({task}, timeout=_STOP_TIMEOUT_S)
        if not done:
            log.warning("outbox relay did not stop in time")

    async def flush(self, *, timeout_s: float) -> None:
        """Publish every pending event once more, after the background task stopped.

        Called at shutdown once in-flight requests have finished, so their
        events leave with this instance. A failure leaves the rows pending for
        any relay (this instance restarted, or another replica) to publish.
        """
        self._stopped = False
        try:
            sent = await asyncio.wait_for(self.relay_once(), timeout=timeout_s)
        except Exception as error:
            log.warning("outbox flush at shutdown failed", error=str(error) or type(error).__name__)
        else:
            log.info("outbox flushed at shutdown", sent=sent)
        finally:
            self._stopped = True

    async def relay_once(self) -> int:
        """Publish every pending event in order; returns how many were acknowledged.

        Stops at the first failure (raised), leaving that event and later ones pending.
        """
        sent = 0
        while not self._stopped:
            batch = await store.pending_events(self._database)
            OUTBOX_PENDING.set(len(batch))
            if not batch:
                return sent
            for event in batch:
                await self._publish(event)
                await store.mark_sent(self._database, event.seq)
                OUTBOX_PUBLISHED.inc()
                sent += 1
                log.info("event published", event_id=event.event_id, seq=event.seq)
        return sent

    async def _publish(self, event: store.PendingEvent) -> None:
        if self._client is None:
            raise RuntimeError("The outbox relay has no NATS connection; call start() first.")
        if not self._stream_ready:
            await ensure_events_stream(self._client.jetstream(), self._subjects)
            self._stream_ready = True
        decoded = decode_event(event.payload)
        subject = (
            self._subjects.cache_flushed
            if isinstance(decoded, CacheFlushed)
            else self._subjects.content_changed
        )
        try:
            await self._client.jetstream().publish(
                subject,
                event.payload,
                timeout=PUBLISH_TIMEOUT_S,
                headers={"Nats-Msg-Id": event.event_id},
            )
        except nats.js.errors.NoStreamResponseError:
            self._stream_ready = False
            raise

    async def _run(self) -> None:
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while not self._stopped:
            self._wake.clear()
            try:
                await self.relay_once()
                backoff = 0.1
                if loop.time() - self._last_purge > _PURGE_EVERY_S:
                    self._last_purge = loop.time()
                    await store.purge_sent(self._database, older_than_s=_SENT_RETENTION_S)
                wait_s = self._poll_interval_s
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, OSError, TimeoutError) as error:
                OUTBOX_FAILURES.inc()
                self._stream_ready = False
                log.warning(
                    "event publish failed, will retry",
                    error=str(error) or type(error).__name__,
                    retry_in_s=round(backoff, 2),
                )
                wait_s = backoff
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            except Exception:
                OUTBOX_FAILURES.inc()
                log.exception("outbox relay failed, will retry", retry_in_s=round(backoff, 2))
                wait_s = backoff
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
