"""Token bucket arithmetic and the headers derived from it, with a controlled clock."""

from __future__ import annotations

import pytest
from portfolio_gateway.ratelimit.bucket import BucketPolicy, BucketState, decide, refill, take
from portfolio_gateway.ratelimit.limiter import rate_limit_headers
from portfolio_gateway.ratelimit.memory_backend import MemoryBackend

CHAT = BucketPolicy("chat", capacity=5, refill_rate=0.333)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def drain(policy: BucketPolicy, state: BucketState | None, now: float) -> BucketState | None:
    for _ in range(policy.capacity):
        state, _ = take(policy, state, now)
    return state


def test_fresh_bucket_is_full() -> None:
    assert refill(CHAT, None, 0.0) == 5.0


def test_fresh_client_first_request_allowed() -> None:
    _, allowed = take(CHAT, None, 0.0)
    assert allowed


def test_full_burst_of_capacity_requests_is_allowed() -> None:
    state = None
    results = []
    for _ in range(5):
        state, allowed = take(CHAT, state, 0.0)
        results.append(allowed)
    assert results == [True] * 5


def test_request_after_a_burst_is_rejected() -> None:
    state = drain(CHAT, None, 0.0)
    _, allowed = take(CHAT, state, 0.0)
    assert not allowed


def test_rejected_request_spends_no_token() -> None:
    state = BucketState(tokens=0.5, updated_at=0.0)
    after, _ = take(CHAT, state, 0.0)
    assert after.tokens == 0.5


def test_rejected_requests_do_not_delay_recovery() -> None:
    state = drain(CHAT, None, 0.0)
    for second in range(4):
        state, _ = take(CHAT, state, float(second))
    _, allowed = take(CHAT, state, 4.0)
    assert allowed


def test_bucket_never_goes_negative() -> None:
    state = drain(CHAT, None, 0.0)
    for _ in range(10):
        state, _ = take(CHAT, state, 0.0)
    assert state is not None
    assert state.tokens == 0.0


def test_refill_is_capped_at_capacity() -> None:
    state = BucketState(tokens=0.0, updated_at=0.0)
    assert refill(CHAT, state, 1_000_000.0) == 5.0


def test_clock_going_backwards_removes_no_tokens() -> None:
    state = BucketState(tokens=2.0, updated_at=100.0)
    assert refill(CHAT, state, 50.0) == 2.0


def test_looking_without_consuming_leaves_the_tokens() -> None:
    state = BucketState(tokens=3.0, updated_at=0.0)
    after, _ = take(CHAT, state, 0.0, consume=False)
    assert after.tokens == 3.0


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (0.0, 4),  # 1 / 0.333 = 3.003 seconds
        (0.332, 3),  # 0.668 / 0.333 = 2.006 seconds
        (0.9, 1),  # never below one second
    ],
)
def test_retry_after_whole_seconds(tokens: float, expected: int) -> None:
    decision = decide(CHAT, allowed=False, tokens=tokens)
    assert decision.retry_after_s == expected


@pytest.mark.parametrize(
    ("policy", "tokens"),
    [
        (CHAT, 0.0),
        (CHAT, 0.332),
        (BucketPolicy("content", capacity=60, refill_rate=10.0), 0.0),
        (BucketPolicy("odd", capacity=3, refill_rate=0.7), 0.3),
        (BucketPolicy("exact", capacity=2, refill_rate=0.5), 0.0),
        (BucketPolicy("tiny", capacity=1, refill_rate=1 / 3), 0.0),
    ],
)
def test_retry_after_retry_after_seconds_is_allowed(policy: BucketPolicy, tokens: float) -> None:
    state = BucketState(tokens=tokens, updated_at=1000.0)
    retry_after = decide(policy, allowed=False, tokens=tokens).retry_after_s
    _, allowed = take(policy, state, 1000.0 + retry_after)
    assert allowed


def test_retry_one_second_early_rejected() -> None:
    state = BucketState(tokens=0.0, updated_at=0.0)
    retry_after = decide(CHAT, allowed=False, tokens=0.0).retry_after_s
    _, allowed = take(CHAT, state, retry_after - 1.0)
    assert not allowed


def test_allowed_decision_has_no_retry_after() -> None:
    assert decide(CHAT, allowed=True, tokens=4.0).retry_after_s == 0


def test_reset_counts_until_full() -> None:
    assert decide(CHAT, allowed=True, tokens=0.0).reset_s == 16


def test_full_bucket_resets_in_zero_seconds() -> None:
    assert decide(CHAT, allowed=True, tokens=5.0).reset_s == 0


def test_remaining_counts_whole_tokens() -> None:
    assert decide(CHAT, allowed=True, tokens=2.999).remaining == 2


def test_remaining_never_goes_negative() -> None:
    assert decide(CHAT, allowed=False, tokens=-0.5).remaining == 0


def test_window_is_full_refill_time() -> None:
    assert CHAT.window_s == 16


def test_headers_through_a_burst_and_a_rejection() -> None:
    clock = Clock()
    memory = MemoryBackend(clock=clock)
    seen = []
    for _ in range(6):
        allowed, tokens = memory.take(CHAT, "client")
        seen.append(rate_limit_headers(decide(CHAT, allowed=allowed, tokens=tokens), 16))

    assert seen[0] == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": "4",
        "RateLimit-Policy": '"chat";q=5;w=16',
        "RateLimit": '"chat";r=4;t=4',
    }
    assert seen[4]["X-RateLimit-Remaining"] == "0"
    assert seen[4]["X-RateLimit-Reset"] == "16"
    assert seen[5] == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "16",
        "RateLimit-Policy": '"chat";q=5;w=16',
        "RateLimit": '"chat";r=0;t=16',
        "Retry-After": "4",
    }


def test_headers_after_waiting_retry_after() -> None:
    clock = Clock()
    memory = MemoryBackend(clock=clock)
    for _ in range(6):
        memory.take(CHAT, "client")
    clock.advance(4)

    allowed, tokens = memory.take(CHAT, "client")
    headers = rate_limit_headers(decide(CHAT, allowed=allowed, tokens=tokens), 16)

    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == "15"  # (5 - 0.332) / 0.333 = 14.02
    assert "Retry-After" not in headers


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", 5, 1.0), "Invalid policy name"),
        (("chat:x", 5, 1.0), "Invalid policy name"),
        (("chat", 0, 1.0), "Capacity must be at least 1 token"),
        (("chat", 5, 0.0), "Refill rate must be a positive number"),
        (("chat", 5, float("inf")), "Refill rate must be a positive number"),
    ],
)
def test_policy_refuses_invalid_values(arguments: tuple[str, int, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BucketPolicy(*arguments)
