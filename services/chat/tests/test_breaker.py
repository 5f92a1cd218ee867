"""The circuit breaker's state machine, driven by a controlled clock."""

from __future__ import annotations

import pytest
from portfolio_chat.llm.breaker import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
)
from prometheus_client import REGISTRY


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_breaker(clock: Clock, **config: float) -> CircuitBreaker:
    return CircuitBreaker("llm", BreakerConfig(**config), clock=clock)  # type: ignore[arg-type]


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.admit().failure()


def test_stays_closed_below_the_failure_threshold() -> None:
    breaker = make_breaker(Clock())

    fail(breaker, 4)

    assert breaker.state is CircuitState.CLOSED


def test_opens_at_the_failure_threshold() -> None:
    breaker = make_breaker(Clock())

    fail(breaker, 5)

    assert breaker.state is CircuitState.OPEN


def test_success_resets_the_failure_count() -> None:
    breaker = make_breaker(Clock())

    fail(breaker, 4)
    breaker.admit().success()
    fail(breaker, 4)

    assert breaker.state is CircuitState.CLOSED


def test_open_circuit_rejects_with_time_left() -> None:
    clock = Clock()
    breaker = make_breaker(clock)
    fail(breaker, 5)
    clock.now += 10.5

    with pytest.raises(CircuitOpenError) as caught:
        breaker.admit()

    assert caught.value.retry_after_s == 20


def test_half_opens_after_the_reset_timeout() -> None:
    clock = Clock()
    breaker = make_breaker(clock)
    fail(breaker, 5)

    clock.now += 30

    assert breaker.state is CircuitState.HALF_OPEN


def test_closes_after_the_success_threshold() -> None:
    clock = Clock()
    breaker = make_breaker(clock)
    fail(breaker, 5)
    clock.now += 30

    states = []
    for _ in range(2):
        breaker.admit().success()
        states.append(breaker.state)

    assert states == [CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_half_open_failure_reopens_for_a_full_timeout() -> None:
    clock = Clock()
    breaker = make_breaker(clock)
    fail(breaker, 5)
    clock.now += 30

    breaker.admit().failure()

    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after_s() == 30


def test_half_open_admits_only_the_bounded_trials() -> None:
    clock = Clock()
    breaker = make_breaker(clock, half_open_max_calls=2)
    fail(breaker, 5)
    clock.now += 30

    first, second = breaker.admit(), breaker.admit()

    with pytest.raises(CircuitOpenError):
        breaker.admit()
    assert first.trial
    assert second.trial


def test_settled_trial_frees_its_slot() -> None:
    clock = Clock()
    breaker = make_breaker(clock, success_threshold=3)
    fail(breaker, 5)
    clock.now += 30

    breaker.admit().success()

    assert breaker.admit().trial


def test_released_permit_counts_neither_way() -> None:
    breaker = make_breaker(Clock(), failure_threshold=2)

    breaker.admit().failure()
    breaker.admit().release()
    breaker.admit().release()

    assert breaker.state is CircuitState.CLOSED


def test_permit_from_an_earlier_state_has_no_effect() -> None:
    clock = Clock()
    breaker = make_breaker(clock, failure_threshold=1)
    slow = breaker.admit()
    breaker.admit().failure()
    clock.now += 30

    slow.success()

    assert breaker.state is CircuitState.HALF_OPEN


def test_settling_twice_counts_once() -> None:
    breaker = make_breaker(Clock(), failure_threshold=2)
    permit = breaker.admit()

    permit.failure()
    permit.failure()

    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize(
    ("advance_s", "failures", "expected"),
    [(0, 0, 0.0), (0, 5, 2.0), (30, 5, 1.0)],
)
def test_state_gauge_reads_closed_half_open_open(
    advance_s: float, failures: int, expected: float
) -> None:
    clock = Clock()
    breaker = make_breaker(clock)
    fail(breaker, failures)
    clock.now += advance_s

    value = REGISTRY.get_sample_value("circuit_breaker_state", {"name": "llm"})

    assert value == expected
    assert breaker.state.gauge_value == expected


@pytest.mark.parametrize(
    "config",
    [
        {"failure_threshold": 0},
        {"success_threshold": 0},
        {"half_open_max_calls": 0},
        {"reset_timeout_s": 0},
    ],
)
def test_invalid_config_is_rejected(config: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Invalid"):
        BreakerConfig(**config)  # type: ignore[arg-type]
