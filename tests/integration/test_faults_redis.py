"""Redis killed and restarted under load: no 5xx, the memory fallbacks engage and
release, and no rate-limit bucket goes negative."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_shared.testing.fake_llm import FakeLlm
    from portfolio_shared.testing.servers import ManagedServer
    from stack import Stack

    from conftest import MakeStack

KEY_PREFIX = "redis-fault:"

OUTAGE_S = 3.0
"""How long Redis stays down while the load keeps running, in seconds."""

RECOVERY_DEADLINE_S = 30.0


class Load:
    """Background load: content reads and chat turns from one client, recorded by phase."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.phase = "before"
        self.statuses: dict[str, Counter[int]] = {}
        self.remaining: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(20)

    def _record(self, response: httpx.Response) -> None:
        self.statuses.setdefault(self.phase, Counter())[response.status_code] += 1
        if "x-ratelimit-remaining" in response.headers:
            self.remaining.append(float(response.headers["x-ratelimit-remaining"]))

    def _run(self) -> None:
        with httpx.Client(base_url=self._stack.gateway_url, timeout=10) as client:
            turn = 0
            while not self._stop.is_set():
                self._record(client.get("/api/v1/content"))
                self._record(client.get("/api/v1/content/bundle"))
                if turn % 5 == 0:
                    self._record(
                        client.post(
                            "/api/v1/chat", json={"message": "hello", "visitorId": "redis-fault"}
                        )
                    )
                turn += 1
                time.sleep(0.01)


def poll(check: Callable[[], bool], *, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def readiness(stack: Stack) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(stack.gateway_url + "/api/health/ready", timeout=5).json()
    return body


def uses_memory_fallback(stack: Stack) -> bool:
    return any("fallback: memory" in str(label) for label in readiness(stack)["checks"].values())


def bucket_tokens(url: str) -> list[float]:
    """Return the ``tokens`` field of every rate-limit bucket under the test's prefix."""
    client = redis.Redis.from_url(url)
    try:
        return [
            float(client.hget(key, "tokens") or 0)
            for key in client.scan_iter(match=f"{KEY_PREFIX}ratelimit:*")
        ]
    finally:
        client.close()


@pytest.mark.slow
def test_redis_restart_keeps_serving(
    make_stack: MakeStack, fake_llm: FakeLlm, own_redis: ManagedServer
) -> None:
    stack = make_stack(
        env={
            "REDIS_URL": own_redis.url,
            "REDIS_KEY_PREFIX": KEY_PREFIX,
            "CONTENT_RATE_LIMIT_CAPACITY": "20",
            "RATE_LIMIT_CAPACITY": "3",
        }
    )
    poll(lambda: readiness(stack)["status"] == "ready", deadline_s=10)

    with Load(stack) as load:
        poll(lambda: sum(load.statuses.get("before", Counter()).values()) >= 30, deadline_s=10)
        assert own_redis.process is not None
        own_redis.process.kill()
        own_redis.process.wait()
        load.phase = "outage"
        engaged = poll(lambda: uses_memory_fallback(stack), deadline_s=10)
        time.sleep(OUTAGE_S)
        own_redis.restart()
        load.phase = "after"
        released = poll(
            lambda: readiness(stack)["status"] == "ready", deadline_s=RECOVERY_DEADLINE_S
        )
        poll(lambda: sum(load.statuses.get("after", Counter()).values()) >= 30, deadline_s=10)

    tokens = bucket_tokens(own_redis.url)
    server_errors = {
        phase: [status for status in counts if status >= 500]
        for phase, counts in load.statuses.items()
    }

    assert engaged
    assert released
    assert server_errors == {phase: [] for phase in load.statuses}
    assert load.remaining
    assert min(load.remaining) >= 0
    assert tokens
    assert min(tokens) >= 0
