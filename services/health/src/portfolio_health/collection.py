"""Collecting every instance's metrics into one Prometheus exposition.

Each instance discovered gets its own metrics request with a deadline; the
ones that reply in time are merged with ``service`` and ``instance`` labels,
the others (and instances known from earlier discoveries that no longer
reply) appear as ``instance_up 0`` and are not waited for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nats.errors
from portfolio_shared.logging import get_logger
from portfolio_shared.tracing import inject_headers

if TYPE_CHECKING:
    import asyncio

    from portfolio_shared.contract.subjects import Subjects
    from portfolio_shared.exposition import ExpositionMerger
    from portfolio_shared.nats_client import NatsClient

    from portfolio_health.discovery import DiscoveryRound, Instance

__all__ = ["fetch_exposition", "merge_expositions"]

log = get_logger("health.metrics")


async def fetch_exposition(
    client: NatsClient, subjects: Subjects, instance: Instance, *, timeout_s: float
) -> str | None:
    """Request one instance's exposition; return ``None`` when it does not reply in time."""
    try:
        reply = await client.request(
            subjects.instance_metrics(instance.micro_id),
            b"",
            timeout=timeout_s,
            headers=inject_headers({}),
        )
    except (nats.errors.Error, TimeoutError) as error:
        log.warning(
            "instance metrics request failed",
            service=instance.kind,
            instance=instance.name,
            error=type(error).__name__,
        )
        return None
    return reply.data.decode("utf-8", errors="replace")


def merge_expositions(
    merger: ExpositionMerger,
    fetched: list[tuple[Instance, str | None]],
    found: DiscoveryRound,
) -> None:
    """Add every fetched exposition, and an ``instance_up`` sample for each instance."""
    for instance, text in fetched:
        up = text is not None
        if text is not None:
            try:
                merger.add_text(text, {"service": instance.kind, "instance": instance.name})
            except ValueError as error:
                up = False
                log.warning(
                    "instance metrics reply invalid",
                    service=instance.kind,
                    instance=instance.name,
                    error=str(error),
                )
        merger.add_up(instance.kind, instance.name, up=up)
    for instance in found.silent:
        merger.add_up(instance.kind, instance.name, up=False)


async def gather_fetches(
    tasks: list[tuple[Instance, asyncio.Task[str | None]]],
) -> list[tuple[Instance, str | None]]:
    """Wait for every fetch started during discovery (each bounded by its own deadline)."""
    return [(instance, await task) for instance, task in tasks]
