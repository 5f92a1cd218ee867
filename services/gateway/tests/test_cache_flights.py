"""``FillFlights``: concurrent fills of one key and generation share one call."""

from __future__ import annotations

import asyncio

import pytest
from portfolio_gateway.cache.flights import FillFlights


class CountingFill:
    """A fill that waits for ``release`` and counts how often it was started."""

    def __init__(self, result: str = "body", error: Exception | None = None) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.result = result
        self.error = error

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


async def test_concurrent_joins_share_one_fill() -> None:
    flights: FillFlights[str] = FillFlights()
    fill = CountingFill()

    waiters = [asyncio.create_task(flights.join(("bundle", 1), fill)) for _ in range(5)]
    await asyncio.sleep(0)
    waiting = flights.waiting
    fill.release.set()
    results = await asyncio.gather(*waiters)

    assert waiting == 5
    assert results == ["body"] * 5
    assert fill.calls == 1
    assert len(flights) == 0
    assert flights.waiting == 0


async def test_another_generation_starts_its_own_fill() -> None:
    flights: FillFlights[str] = FillFlights()
    old, new = CountingFill("old"), CountingFill("new")

    before = asyncio.create_task(flights.join(("bundle", 1), old))
    after = asyncio.create_task(flights.join(("bundle", 2), new))
    await asyncio.sleep(0)
    old.release.set()
    new.release.set()

    assert await before == "old"
    assert await after == "new"
    assert (old.calls, new.calls) == (1, 1)


async def test_every_waiter_gets_the_fills_exception() -> None:
    flights: FillFlights[str] = FillFlights()
    fill = CountingFill(error=TimeoutError("no reply"))

    waiters = [asyncio.create_task(flights.join("key", fill)) for _ in range(3)]
    await asyncio.sleep(0)
    fill.release.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)

    assert all(isinstance(outcome, TimeoutError) for outcome in outcomes)
    assert fill.calls == 1


async def test_cancelled_caller_leaves_the_fill_to_the_others() -> None:
    flights: FillFlights[str] = FillFlights()
    fill = CountingFill()

    first = asyncio.create_task(flights.join("key", fill))
    second = asyncio.create_task(flights.join("key", fill))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    fill.release.set()

    assert await second == "body"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_finished_fill_is_not_reused() -> None:
    flights: FillFlights[str] = FillFlights()
    fill = CountingFill()
    fill.release.set()

    await flights.join("key", fill)
    await flights.join("key", fill)

    assert fill.calls == 2
