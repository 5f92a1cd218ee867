"""The health service's endpoints: aggregated readiness and merged metrics.

``health_ready`` replies with a ``ReadinessReport`` (cached about a second).
``health_metrics`` replies with ``{"exposition": <text>}``: this instance's own
metrics plus every other instance's, except the one named by the request's
``exclude`` query parameter (the asking gateway, which adds its own).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from portfolio_shared.exposition import ExpositionMerger
from portfolio_shared.logging import get_logger
from portfolio_shared.runtime import ServiceRuntime
from prometheus_client import REGISTRY, generate_latest

from portfolio_health.collection import fetch_exposition, gather_fetches, merge_expositions
from portfolio_health.discovery import Discovery, Instance
from portfolio_health.readiness import ReadinessMonitor, evaluate_readiness

if TYPE_CHECKING:
    from portfolio_shared.contract.health import ReadinessReport
    from portfolio_shared.contract.messages import ServiceRequest

    from portfolio_health.settings import HealthSettings

__all__ = ["HealthService"]

log = get_logger("health.service")


class HealthService:
    """Owns the runtime, the discovery state and the readiness cache of one instance."""

    def __init__(self, settings: HealthSettings) -> None:
        self.settings = settings
        self.runtime = ServiceRuntime(
            "health", settings, description="portfolio readiness and metrics aggregation"
        )
        self.runtime.add_endpoint("ready", self.runtime.subjects.health_ready, self.ready)
        self.runtime.add_endpoint("metrics", self.runtime.subjects.health_metrics, self.metrics)
        self.monitor = ReadinessMonitor(
            self._evaluate_readiness, ttl_s=settings.health_cache_ms / 1000
        )
        self._discovery: Discovery | None = None

    @property
    def discovery(self) -> Discovery:
        """Discovery over the runtime's connection (available once the runtime started)."""
        if self._discovery is None:
            self._discovery = Discovery(
                self.runtime.client,
                self.runtime.subjects,
                window_s=self.settings.health_discovery_window_ms / 1000,
                forget_after_s=self.settings.health_forget_after_s,
            )
        return self._discovery

    async def ready(self, request: ServiceRequest) -> ReadinessReport:
        return await self.monitor.current()

    async def metrics(self, request: ServiceRequest) -> dict[str, str]:
        skip = {self.runtime.micro_id}
        if request.query.get("exclude"):
            skip.add(request.query["exclude"])
        client, subjects = self.runtime.client, self.runtime.subjects
        timeout_s = self.settings.health_metrics_timeout_ms / 1000
        fetches: list[tuple[Instance, asyncio.Task[str | None]]] = []

        def on_found(instance: Instance) -> None:
            if instance.micro_id not in skip:
                task = asyncio.create_task(
                    fetch_exposition(client, subjects, instance, timeout_s=timeout_s)
                )
                fetches.append((instance, task))

        # Readiness is refreshed alongside, so its gauges in this instance's own
        # metrics describe the system as of this scrape.
        readiness = asyncio.create_task(self.monitor.current())
        found = await self.discovery.run(on_found)
        fetched = await gather_fetches(fetches)
        try:
            await readiness
        except Exception as error:
            # The metrics are still worth serving; the readiness gauges keep their last values.
            log.warning("readiness refresh failed during metrics collection", error=repr(error))

        merger = ExpositionMerger()
        own = {"service": "health", "instance": self.runtime.instance_id}
        merger.add_text(generate_latest(REGISTRY).decode(), own)
        merger.add_up("health", self.runtime.instance_id, up=True)
        merge_expositions(merger, fetched, found)
        return {"exposition": merger.render().decode()}

    async def _evaluate_readiness(self) -> ReadinessReport:
        return await evaluate_readiness(
            self.runtime.client,
            self.runtime.subjects,
            self.discovery,
            check_timeout_s=self.settings.health_check_timeout_ms / 1000,
        )
