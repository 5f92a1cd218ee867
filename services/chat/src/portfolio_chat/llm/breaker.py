"""The circuit breaker in front of the LLM provider.

States: ``closed`` lets every call through and counts consecutive failures;
``failure_threshold`` of them open the circuit. ``open`` rejects every call at
once until ``reset_timeout_s`` has passed, then the circuit is ``half_open``:
at most ``half_open_max_calls`` trial calls run at a time (the rest are
rejected), ``success_threshold`` successful trials close it and any failed
trial opens it again.

A caller takes a ``Permit`` with ``admit()`` (which raises ``CircuitOpenError``
when the call may not run) and settles it once with ``success()``,
``failure()`` or ``release()`` (an outcome that carries no information about the
provider's health, such as the provider rejecting one request). A permit taken
before a state change settles without effect, so a slow call from a previous
state cannot flip the current one.

The open-to-half-open transition is taken when the state is next read (a call,
a readiness check or a metrics scrape), so no timer runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from portfolio_shared.logging import get_logger
from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BreakerConfig", "CircuitBreaker", "CircuitOpenError", "CircuitState", "Permit"]

log = get_logger("chat.breaker")

CIRCUIT_STATE = Gauge(
    "circuit_breaker_state",
    "Circuit state: 0 closed, 1 half-open, 2 open.",
    ["name"],
)
CIRCUIT_TRANSITIONS = Counter(
    "circuit_breaker_transitions_total",
    "Circuit state changes, by breaker and by the states left and entered.",
    ["name", "from_state", "to_state"],
)
CIRCUIT_REJECTIONS = Counter(
    "circuit_breaker_rejections_total",
    "Calls rejected without reaching the protected dependency, by breaker and state.",
    ["name", "state"],
)


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge_value(self) -> int:
        """Value of ``circuit_breaker_state``: 0 closed, 1 half-open, 2 open."""
        return {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}[self]


class CircuitOpenError(Exception):
    """The circuit rejected a call: open, or half-open with every trial slot taken."""

    def __init__(self, state: CircuitState, retry_after_s: int) -> None:
        super().__init__("Circuit breaker is open")
        self.state = state
        self.retry_after_s = retry_after_s
        """Whole seconds until a call may be admitted again (at least 1)."""


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds of one breaker."""

    failure_threshold: int = 5
    """Consecutive failures in closed state that open the circuit."""

    reset_timeout_s: float = 30.0
    """Seconds the circuit stays open before admitting trial calls."""

    success_threshold: int = 2
    """Successful trials in half-open state that close the circuit."""

    half_open_max_calls: int = 1
    """Trial calls allowed at once in half-open state."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ValueError("Invalid thresholds. Failure and success thresholds must be >= 1.")
        if self.half_open_max_calls < 1:
            raise ValueError("Invalid half_open_max_calls. At least one trial call must run.")
        if self.reset_timeout_s <= 0:
            raise ValueError("Invalid reset_timeout_s. The reset timeout must be positive.")


@dataclass
class Permit:
    """Leave to make one call; settle it exactly once (later settlements do nothing)."""

    breaker: CircuitBreaker
    generation: int
    trial: bool
    settled: bool = False

    def success(self) -> None:
        self._settle("success")

    def failure(self) -> None:
        self._settle("failure")

    def release(self) -> None:
        """Settle without an outcome: the call carried no information about the dependency's health."""
        self._settle("neutral")

    def _settle(self, outcome: str) -> None:
        if self.settled:
            return
        self.settled = True
        self.breaker._settle(self, outcome)


@dataclass
class CircuitBreaker:
    """One breaker, named in metrics and logs (``llm``)."""

    name: str
    config: BreakerConfig = field(default_factory=BreakerConfig)
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds; tests pass a controlled clock."""

    _state: CircuitState = field(init=False, default=CircuitState.CLOSED)
    _generation: int = field(init=False, default=0)
    _failures: int = field(init=False, default=0)
    _successes: int = field(init=False, default=0)
    _trials_in_flight: int = field(init=False, default=0)
    _opened_at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        CIRCUIT_STATE.labels(self.name).set_function(lambda: self.state.gauge_value)

    @property
    def state(self) -> CircuitState:
        """Current state, taking the open-to-half-open transition when it is due."""
        if self._state is CircuitState.OPEN and self._open_time_left() <= 0:
            self._transition(CircuitState.HALF_OPEN)
        return self._state

    def retry_after_s(self) -> int:
        """Whole seconds until the circuit admits a call again; 0 when it admits now."""
        state = self.state
        if state is CircuitState.OPEN:
            return max(1, math.ceil(self._open_time_left()))
        if (
            state is CircuitState.HALF_OPEN
            and self._trials_in_flight >= self.config.half_open_max_calls
        ):
            return 1
        return 0

    def admit(self) -> Permit:
        """Return a permit for one call, or raise ``CircuitOpenError``."""
        state = self.state
        if state is CircuitState.CLOSED:
            return Permit(self, self._generation, trial=False)
        if (
            state is CircuitState.HALF_OPEN
            and self._trials_in_flight < self.config.half_open_max_calls
        ):
            self._trials_in_flight += 1
            return Permit(self, self._generation, trial=True)
        CIRCUIT_REJECTIONS.labels(self.name, state.value).inc()
        raise CircuitOpenError(state, self.retry_after_s())

    def _settle(self, permit: Permit, outcome: str) -> None:
        if permit.generation != self._generation:
            return
        if permit.trial:
            self._trials_in_flight -= 1
        if self._state is CircuitState.CLOSED:
            if outcome == "failure":
                self._failures += 1
                if self._failures >= self.config.failure_threshold:
                    self._transition(CircuitState.OPEN)
            elif outcome == "success":
                self._failures = 0
        elif self._state is CircuitState.HALF_OPEN:
            if outcome == "failure":
                self._transition(CircuitState.OPEN)
            elif outcome == "success":
                self._successes += 1
                if self._successes >= self.config.success_threshold:
                    self._transition(CircuitState.CLOSED)

    def _open_time_left(self) -> float:
        return self._opened_at + self.config.reset_timeout_s - self.clock()

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._failures = 0
        self._successes = 0
        self._trials_in_flight = 0
        if new is CircuitState.OPEN:
            self._opened_at = self.clock()
        CIRCUIT_TRANSITIONS.labels(self.name, old.value, new.value).inc()
        log.warning(
            "circuit state changed",
            breaker=self.name,
            from_state=old.value,
            to_state=new.value,
        )
