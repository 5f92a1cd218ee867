"""Readiness of the real system through the gateway: every service up, a critical
service stopped, Redis stopped, and a frozen (SIGSTOPped) service."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_shared.testing.fake_llm import FakeLlm
    from portfolio_shared.testing.servers import ManagedServer
    from stack import Stack

    from conftest import MakeStack

READY_PATH = "/api/health/ready"

ANSWER_DEADLINE_S = 1.0
"""Readiness must answer within this even while a dependency hangs."""

Answer = tuple[int, dict[str, Any]]


def get_ready(stack: Stack, *, timeout_s: float = 5.0) -> Answer:
    """``GET /api/health/ready``: the status code and the JSON body (raises on a timeout)."""
    response = httpx.get(stack.gateway_url + READY_PATH, timeout=timeout_s)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def ready_until(stack: Stack, settled: Callable[[Answer], bool], *, deadline_s: float) -> Answer:
    """Ask for readiness until ``settled`` holds or ``deadline_s`` passes; return the last answer."""
    deadline = time.monotonic() + deadline_s
    answer = get_ready(stack)
    while not settled(answer) and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = get_ready(stack)
    return answer


def is_ready(answer: Answer) -> bool:
    return answer[0] == 200 and answer[1]["status"] == "ready"


def test_all_services_up_is_ready(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    stack = make_stack()
    status, body = ready_until(stack, is_ready, deadline_s=10)
    assert (status, body["status"]) == (200, "ready")
    assert body["checks"]["database"] == "ok"


def test_content_stopped_is_unhealthy(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    stack = make_stack()
    ready_until(stack, is_ready, deadline_s=10)

    stack.stop("content")
    status, body = ready_until(stack, lambda answer: answer[0] == 503, deadline_s=2)

    assert (status, body["status"], body["checks"]["content"]) == (503, "unhealthy", "error")
    assert body["checks"]["database"] == "error"


def test_redis_stopped_is_degraded_with_memory_fallback(
    make_stack: MakeStack, fake_llm: FakeLlm, own_redis: ManagedServer
) -> None:
    stack = make_stack(env={"REDIS_URL": own_redis.url, "REDIS_KEY_PREFIX": "health-test:"})
    ready_until(stack, is_ready, deadline_s=10)

    own_redis.stop()
    status, body = ready_until(stack, lambda answer: answer[1]["status"] != "ready", deadline_s=10)

    fallbacks = [name for name, label in body["checks"].items() if "fallback: memory" in label]
    assert (status, body["status"], bool(fallbacks)) == (200, "degraded", True)


@pytest.mark.parametrize(
    ("frozen", "expected"),
    [("content", (503, "unhealthy")), ("chat", (200, "degraded"))],
)
def test_frozen_service_answered_within_second(
    make_stack: MakeStack, fake_llm: FakeLlm, frozen: str, expected: tuple[int, str]
) -> None:
    stack = make_stack()
    ready_until(stack, is_ready, deadline_s=10)

    stack.freeze(frozen)
    # Every answer for a few seconds (several cache lifetimes, so several fresh
    # rounds of checks) must arrive within the deadline; httpx raises otherwise.
    deadline = time.monotonic() + 3
    answers = [get_ready(stack, timeout_s=ANSWER_DEADLINE_S)]
    while time.monotonic() < deadline:
        answers.append(get_ready(stack, timeout_s=ANSWER_DEADLINE_S))
        time.sleep(0.2)

    status, body = answers[-1]
    assert (status, body["status"], body["checks"][frozen]) == (*expected, "error")
