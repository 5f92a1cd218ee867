"""Wiring of one content service instance: migrations, database, sample data, NATS
endpoints, the readiness check, the outbox relay and housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from portfolio_shared.contract import CheckResult
from portfolio_shared.logging import get_logger
from portfolio_shared.runtime import ServiceRuntime

from portfolio_content.content.handlers import ContentEndpoints
from portfolio_content.content.service import ContentService
from portfolio_content.db import migrate
from portfolio_content.db.database import Database, RetryPolicy
from portfolio_content.idempotency.store import purge_expired
from portfolio_content.outbox.relay import OutboxRelay
from portfolio_content.sample import SAMPLE_DIR
from portfolio_content.transfer.markdown import read_folder

if TYPE_CHECKING:
    from portfolio_content.settings import ContentSettings

__all__ = [
    "HOUSEKEEPING_INTERVAL_S",
    "ContentInstance",
    "open_database",
    "run",
    "seed_sample_content",
]

log = get_logger("content.app")

HOUSEKEEPING_INTERVAL_S = 600.0
"""How often expired idempotency keys are deleted, in seconds."""


def open_database(settings: ContentSettings) -> Database:
    """Build a ``Database`` on the configured URL with the configured retry policy (not yet open)."""
    return Database(
        settings.database_url,
        auth_token=settings.auth_token,
        retry=RetryPolicy(
            attempts=settings.database_retry_attempts,
            base_delay_s=settings.database_retry_base_delay_ms / 1000,
            max_delay_s=settings.database_retry_max_delay_ms / 1000,
        ),
    )


async def seed_sample_content(service: ContentService) -> None:
    """Load the bundled sample portfolio if the ``content`` table has no rows at all."""
    items = [entry.item for entry in read_folder(SAMPLE_DIR)]
    result = await service.import_items(items, changed_by="seed", only_if_empty=True)
    if result is not None:
        log.info("sample content loaded", created=result.created)


async def _housekeeping(service: ContentService, ttl_s: int) -> None:
    while True:
        try:
            purged = await purge_expired(service.database, ttl_s=ttl_s)
            if purged:
                log.info("expired idempotency keys deleted", count=purged)
        except Exception as error:
            log.warning("idempotency purge failed", error=str(error) or type(error).__name__)
        await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)


class ContentInstance:
    """One running content service instance; an async context manager.

    On enter: apply migrations, open the database, load the sample portfolio
    into an empty database (when enabled), register the endpoints and the
    ``database`` check with NATS and start the outbox relay and housekeeping.
    On exit: stop taking requests, finish in-flight ones, stop the relay and
    publish what is still in the outbox, drain NATS, then close the database.
    """

    def __init__(self, settings: ContentSettings) -> None:
        self.settings = settings
        self.runtime = ServiceRuntime(
            "content", settings, description="Portfolio content: reads, admin CMS, history, events"
        )
        self.database = open_database(settings)
        self.relay = OutboxRelay(
            self.database,
            self.runtime.subjects,
            poll_interval_s=settings.outbox_poll_interval_ms / 1000,
        )
        self.service = ContentService(
            self.database, idempotency_ttl_s=settings.idempotency_ttl_s, on_commit=self.relay.wake
        )
        for name, subject, handler in ContentEndpoints(
            self.service, audit_log=settings.audit_log
        ).routes(self.runtime.subjects):
            self.runtime.add_endpoint(name, subject, handler)
        self.runtime.add_check("database", self.check_database, critical=True)
        self._housekeeping: asyncio.Task[None] | None = None

    async def check_database(self) -> CheckResult:
        """Readiness of the database: ``SELECT 1`` through the database interface."""
        try:
            await self.database.ping()
        except Exception as error:
            return CheckResult(
                status="error", critical=True, detail=f"SELECT 1 failed: {type(error).__name__}"
            )
        return CheckResult(status="ok", critical=True)

    async def __aenter__(self) -> ContentInstance:
        await asyncio.to_thread(
            migrate.upgrade, self.settings.database_url, self.settings.auth_token
        )
        await self.database.open()
        try:
            if self.settings.seed_sample_content:
                await seed_sample_content(self.service)
            await self.runtime.__aenter__()
        except BaseException:
            await self.database.close()
            raise
        self.relay.start(self.runtime.client)
        self.runtime.on_reconnected(self.relay.wake_async)
        self._housekeeping = asyncio.create_task(
            _housekeeping(self.service, self.settings.idempotency_ttl_s)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        try:
            await self.runtime.stop_serving()
            await self.relay.stop()
            await self.relay.flush(timeout_s=self.settings.shutdown_timeout_s)
            await self.runtime.disconnect()
        finally:
            await self.database.close()


async def run(settings: ContentSettings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down cleanly."""
    async with ContentInstance(settings) as instance:
        instance.runtime.install_signal_handlers()
        await instance.runtime.wait_until_stopped()
