"""Aggregated readiness: which parts of the system work, and whether that is enough.

Rules (``aggregate``):

- every instance that replied with its checks contributes each check under the
  check's own name (``database``, ``llm``, ``session_store``, ``cache``, …);
  a part reported by several instances is ``error`` when any of them failed;
- ``content`` and ``chat`` name the services themselves: ``ok`` while at
  least one instance replied with its checks in time;
- ``nats`` is ``ok`` (the request arrived over it) and ``database`` is always
  listed, ``error`` when no content instance could report it;
- a part is critical when the reporting service marked its check critical,
  and ``nats``, ``content`` and ``database`` always are.

``ReadinessMonitor`` caches the report for about a second and lets concurrent
callers share one evaluation, so a storm of probes costs one round of checks.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import msgspec
import nats.errors
from portfolio_shared.contract.health import (
    InstanceReadiness,
    ReadinessReport,
    overall_status,
    part_label,
)
from portfolio_shared.contract.messages import CheckReport, CheckResult
from portfolio_shared.logging import get_logger
from portfolio_shared.timeutil import format_timestamp, utc_now
from portfolio_shared.tracing import inject_headers
from prometheus_client import Gauge

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from portfolio_shared.contract.subjects import Subjects
    from portfolio_shared.nats_client import NatsClient

    from portfolio_health.discovery import Discovery, Instance

__all__ = [
    "ALWAYS_LISTED",
    "SERVICE_PARTS",
    "ReadinessMonitor",
    "aggregate",
    "ask_checks",
    "evaluate_readiness",
]

log = get_logger("health.readiness")

SERVICE_PARTS: dict[str, bool] = {"content": True, "chat": False}
"""Service kinds listed as parts of their own, each with whether it is critical."""

ALWAYS_LISTED: dict[str, bool] = {"nats": True, "database": True}
"""Parts listed even when no instance reported them, each with whether it is critical."""

READINESS_STATUS = Gauge(
    "readiness_status", "Aggregated readiness of the system: 0 ready, 1 degraded, 2 unhealthy."
)
READINESS_CHECK = Gauge(
    "readiness_check_ok",
    "1 when the part passed in the last aggregated readiness report, 0 when it failed.",
    ["part"],
)
_STATUS_VALUE = {"ready": 0, "degraded": 1, "unhealthy": 2}


def aggregate(
    results: Iterable[tuple[Instance, CheckReport | None]], *, checked_at: str | None = None
) -> ReadinessReport:
    """Combine per-instance check reports (``None``: no reply in time) into one report."""
    instances: list[InstanceReadiness] = []
    answered_kinds: set[str] = set()
    by_part: dict[str, list[CheckResult]] = {}
    for instance, report in results:
        if report is None:
            instances.append(
                InstanceReadiness(
                    service=instance.kind, instance=instance.name, status="unreachable"
                )
            )
            continue
        answered_kinds.add(instance.kind)
        failing = any(result.status == "error" for result in report.checks.values())
        instances.append(
            InstanceReadiness(
                service=instance.kind,
                instance=instance.name,
                status="error" if failing else "ok",
                checks=report.checks,
            )
        )
        for name, result in report.checks.items():
            by_part.setdefault(name, []).append(result)

    checks: dict[str, str] = {"nats": "ok"}
    critical = {name for name, is_critical in ALWAYS_LISTED.items() if is_critical}
    for kind, is_critical in SERVICE_PARTS.items():
        checks[kind] = "ok" if kind in answered_kinds else "error"
        if is_critical:
            critical.add(kind)
    for name in sorted(by_part):
        checks[name] = _combine(by_part[name])
        if any(result.critical for result in by_part[name]):
            critical.add(name)
    for name in ALWAYS_LISTED:
        checks.setdefault(name, "error")

    instances.sort(key=lambda item: (item.service, item.instance))
    return ReadinessReport(
        status=overall_status(checks, critical),
        checks=checks,
        critical=sorted(critical & checks.keys()),
        instances=instances,
        checked_at=checked_at,
    )


def _combine(results: list[CheckResult]) -> str:
    failing = [result for result in results if result.status == "error"]
    if failing:
        return part_label("error", next((r.fallback for r in failing if r.fallback), None))
    return part_label("ok", next((r.fallback for r in results if r.fallback), None))


async def ask_checks(
    client: NatsClient, subjects: Subjects, instance: Instance, *, timeout_s: float
) -> CheckReport | None:
    """Request one instance's checks; return ``None`` when it does not reply in time."""
    try:
        reply = await client.request(
            subjects.instance_checks(instance.micro_id),
            b"",
            timeout=timeout_s,
            headers=inject_headers({}),
        )
        return CheckReport.decode(reply.data)
    except (nats.errors.Error, TimeoutError) as error:
        log.warning(
            "instance checks request failed",
            service=instance.kind,
            instance=instance.name,
            error=type(error).__name__,
        )
    except msgspec.DecodeError as error:
        log.warning(
            "instance checks reply invalid",
            service=instance.kind,
            instance=instance.name,
            error=str(error),
        )
    return None


async def evaluate_readiness(
    client: NatsClient, subjects: Subjects, discovery: Discovery, *, check_timeout_s: float
) -> ReadinessReport:
    """Discover instances and ask each for its checks as soon as its ping reply arrives."""
    asked: list[tuple[Instance, asyncio.Task[CheckReport | None]]] = []

    def on_found(instance: Instance) -> None:
        task = asyncio.create_task(
            ask_checks(client, subjects, instance, timeout_s=check_timeout_s)
        )
        asked.append((instance, task))

    found = await discovery.run(on_found)
    results: list[tuple[Instance, CheckReport | None]] = [
        (instance, await task) for instance, task in asked
    ]
    results.extend((instance, None) for instance in found.silent)
    return aggregate(results, checked_at=format_timestamp(utc_now()))


class ReadinessMonitor:
    """Cache of the last readiness report, kept ``ttl_s`` seconds; one evaluation at a time."""

    def __init__(
        self,
        evaluate: Callable[[], Awaitable[ReadinessReport]],
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._evaluate = evaluate
        self._ttl_s = ttl_s
        self._clock = clock
        self._cached: tuple[float, ReadinessReport] | None = None
        self._running: asyncio.Task[ReadinessReport] | None = None
        self._last_status: str | None = None

    async def current(self) -> ReadinessReport:
        """Return the cached report while fresh, else the result of a (shared) new evaluation."""
        if self._cached is not None and self._clock() - self._cached[0] < self._ttl_s:
            return self._cached[1]
        if self._running is None:
            self._running = asyncio.create_task(self._refresh())
        # Shielded, so a caller that gives up does not cancel the evaluation others wait for.
        return await asyncio.shield(self._running)

    async def _refresh(self) -> ReadinessReport:
        try:
            report = await self._evaluate()
        finally:
            self._running = None
        self._cached = (self._clock(), report)
        _export(report)
        if report.status != self._last_status:
            failing = [name for name, label in report.checks.items() if label.startswith("error")]
            level = log.info if report.status == "ready" else log.warning
            level("readiness changed", status=report.status, failing=failing)
            self._last_status = report.status
        return report


def _export(report: ReadinessReport) -> None:
    READINESS_STATUS.set(_STATUS_VALUE[report.status])
    READINESS_CHECK.clear()
    for name, label in report.checks.items():
        READINESS_CHECK.labels(name).set(0 if label.startswith("error") else 1)
