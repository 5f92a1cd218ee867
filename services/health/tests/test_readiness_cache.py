"""The readiness cache: answers reused for about a second, one evaluation at a time."""

from __future__ import annotations

import asyncio

import pytest
from portfolio_health.readiness import ReadinessMonitor
from portfolio_shared.contract.health import ReadinessReport


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingEvaluation:
    """Stands in for a round of checks; optionally waits for ``release`` before answering."""

    def __init__(self) -> None:
        self.calls = 0
        self.release: asyncio.Event | None = None

    async def __call__(self) -> ReadinessReport:
        self.calls += 1
        if self.release is not None:
            await self.release.wait()
        return ReadinessReport(status="ready", checks={"database": "ok"}, critical=["database"])


async def test_report_reused_within_ttl() -> None:
    clock, evaluate = Clock(), CountingEvaluation()
    monitor = ReadinessMonitor(evaluate, ttl_s=1.0, clock=clock)
    await monitor.current()
    clock.now += 0.9
    await monitor.current()
    assert evaluate.calls == 1


async def test_report_refreshed_after_ttl() -> None:
    clock, evaluate = Clock(), CountingEvaluation()
    monitor = ReadinessMonitor(evaluate, ttl_s=1.0, clock=clock)
    await monitor.current()
    clock.now += 1.0
    await monitor.current()
    assert evaluate.calls == 2


async def test_concurrent_askers_share_one_evaluation() -> None:
    evaluate = CountingEvaluation()
    evaluate.release = asyncio.Event()
    monitor = ReadinessMonitor(evaluate, ttl_s=1.0, clock=Clock())
    askers = [asyncio.create_task(monitor.current()) for _ in range(50)]
    await asyncio.sleep(0)
    evaluate.release.set()
    await asyncio.gather(*askers)
    assert evaluate.calls == 1


async def test_cancelled_caller_keeps_shared_evaluation() -> None:
    evaluate = CountingEvaluation()
    evaluate.release = asyncio.Event()
    monitor = ReadinessMonitor(evaluate, ttl_s=1.0, clock=Clock())
    impatient = asyncio.create_task(monitor.current())
    patient = asyncio.create_task(monitor.current())
    await asyncio.sleep(0)
    impatient.cancel()
    evaluate.release.set()
    assert (await patient).status == "ready"


async def test_failed_evaluation_is_not_cached() -> None:
    calls = 0

    async def failing_once() -> ReadinessReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("nats hiccup")
        return ReadinessReport(status="ready", checks={}, critical=[])

    monitor = ReadinessMonitor(failing_once, ttl_s=1.0, clock=Clock())
    with pytest.raises(RuntimeError):
        await monitor.current()
    assert (await monitor.current()).status == "ready"
