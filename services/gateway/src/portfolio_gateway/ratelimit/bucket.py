"""Token bucket arithmetic: pure functions of a policy, a stored state and the time.

A bucket holds up to ``capacity`` tokens and gains ``refill_rate`` tokens per
second. A request takes one whole token. A request that finds less than one is
rejected and takes nothing, so rejected requests never delay recovery and the
bucket never goes negative. The Redis script in ``redis_backend`` performs the
same step on the server; this module is the reference both backends follow,
and the only place that turns a bucket into a ``Decision`` and its headers'
numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "TOKEN_EPSILON",
    "BucketPolicy",
    "BucketState",
    "Decision",
    "decide",
    "refill",
    "take",
]

TOKEN_EPSILON = 1e-6
"""A shortfall below a whole token this small still counts as a whole token.

It absorbs floating-point rounding, so that a retry exactly ``Retry-After``
seconds later always finds its token."""


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    """One named limit, such as ``chat`` or ``content``."""

    name: str
    """Policy name, used in Redis keys, metrics and the ``RateLimit`` headers."""

    capacity: int
    """Most tokens a bucket holds: the burst a fresh client may send at once."""

    refill_rate: float
    """Tokens added per second, up to ``capacity``."""

    window_s: int = field(init=False, repr=False, compare=False)
    """Whole seconds an empty bucket takes to fill up: the ``w`` of ``RateLimit-Policy``."""

    idle_ttl_s: int = field(init=False, repr=False, compare=False)
    """Seconds after its last use when a bucket is full again and may be forgotten.

    A forgotten bucket starts full, exactly as the remembered one would be.
    """

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(
                f"Invalid policy name {self.name!r}. A policy name must contain only "
                "letters, digits and underscores."
            )
        if self.capacity < 1:
            raise ValueError(
                f"Invalid capacity {self.capacity} for policy {self.name!r}. "
                "Capacity must be at least 1 token."
            )
        if not self.refill_rate > 0 or not math.isfinite(self.refill_rate):
            raise ValueError(
                f"Invalid refill rate {self.refill_rate} for policy {self.name!r}. "
                "Refill rate must be a positive number of tokens per second."
            )
        # Computed once, because every check reads them. The class is frozen, so
        # object.__setattr__ sets them.
        window_s = max(1, math.ceil(self.capacity / self.refill_rate))
        object.__setattr__(self, "window_s", window_s)
        object.__setattr__(self, "idle_ttl_s", window_s + 1)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket as stored: its tokens at the moment ``updated_at`` (seconds, any epoch)."""

    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check, with the numbers the response headers carry."""

    policy: str
    allowed: bool
    limit: int
    """The policy's capacity."""

    remaining: int
    """Whole tokens left after this request, never negative."""

    reset_s: int
    """Whole seconds until the bucket is full again, never negative."""

    retry_after_s: int
    """Whole seconds, at least 1, after which a retry is allowed; 0 when this request was allowed."""


def refill(policy: BucketPolicy, state: BucketState | None, now: float) -> float:
    """Tokens in the bucket at ``now``: full when unknown, never above capacity.

    A clock that went backwards adds nothing rather than removing tokens.
    """
    if state is None:
        return float(policy.capacity)
    elapsed = max(0.0, now - state.updated_at)
    return min(float(policy.capacity), state.tokens + elapsed * policy.refill_rate)


def take(
    policy: BucketPolicy, state: BucketState | None, now: float, *, consume: bool = True
) -> tuple[BucketState, bool]:
    """Try to take one token at ``now``; return the state to store and whether one was there.

    A rejected request stores the refilled tokens unchanged, which is the same
    bucket as before, so it costs the client nothing. With ``consume=False``
    the bucket is only looked at: allowed when a token is there, none taken.
    """
    tokens = refill(policy, state, now)
    allowed = tokens >= 1.0 - TOKEN_EPSILON
    if allowed and consume:
        tokens = max(0.0, tokens - 1.0)
    return BucketState(tokens=tokens, updated_at=now), allowed


def decide(policy: BucketPolicy, *, allowed: bool, tokens: float) -> Decision:
    """Describe a check whose bucket contains ``tokens`` after it, for headers and metrics."""
    tokens = max(0.0, tokens)
    remaining = math.floor(tokens + TOKEN_EPSILON)
    reset_s = max(0, math.ceil((policy.capacity - tokens) / policy.refill_rate - TOKEN_EPSILON))
    retry_after_s = 0
    if not allowed:
        retry_after_s = max(1, math.ceil((1.0 - tokens) / policy.refill_rate))
    return Decision(
        policy=policy.name,
        allowed=allowed,
        limit=policy.capacity,
        remaining=min(remaining, policy.capacity),
        reset_s=reset_s,
        retry_after_s=retry_after_s,
    )
