"""RedisLink readiness notices a Redis outage even while nothing else uses Redis."""

from __future__ import annotations

import asyncio

import pytest
from portfolio_shared import redis_link
from portfolio_shared.contract.messages import CheckResult
from portfolio_shared.redis_link import RedisLink
from portfolio_shared.testing.servers import start_redis

DEADLINE_S = 5.0


async def check_until(link: RedisLink, status: str) -> CheckResult:
    """Call ``check`` until it reports ``status`` or the deadline passes; return the last result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    result = link.check()
    while result.status != status and loop.time() < deadline:
        await asyncio.sleep(0.05)
        result = link.check()
    return result


async def test_check_reports_fallback_after_redis_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_link, "VERIFY_INTERVAL_S", 0.0)
    server = start_redis(prefer_env=False)
    link = RedisLink(server.url, component="test-check")
    try:
        server.stop()
        result = await check_until(link, "error")
    finally:
        await link.close()
    assert (result.status, result.fallback) == ("error", "memory")


async def test_check_stays_ok_while_redis_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_link, "VERIFY_INTERVAL_S", 0.0)
    server = start_redis(prefer_env=False)
    link = RedisLink(server.url, component="test-check")
    try:
        for _ in range(5):
            link.check()
            await asyncio.sleep(0.05)
        result = link.check()
    finally:
        await link.close()
        server.stop()
    assert result.status == "ok"
