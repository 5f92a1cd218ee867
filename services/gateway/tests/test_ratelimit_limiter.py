"""The RateLimiter as routes use it: policies, 429s with their headers, metrics, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from portfolio_gateway.ratelimit import (
    ADMIN_AUTH_POLICY,
    CHAT_POLICY,
    CONTENT_POLICY,
    BucketPolicy,
    RateLimitedError,
    RateLimiter,
)
from portfolio_gateway.settings import GatewaySettings
from portfolio_shared.errors import ErrorCode, RateLimitExceededError
from prometheus_client import REGISTRY

CHAT = BucketPolicy("chat", capacity=5, refill_rate=0.333)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def hits(policy: str) -> float:
    return REGISTRY.get_sample_value("rate_limit_hits_total", {"policy": policy}) or 0.0


def remaining_series(ip_hash: str) -> float | None:
    return REGISTRY.get_sample_value("rate_limit_remaining", {"ip_hash": ip_hash, "policy": "chat"})


async def exhaust(limiter: RateLimiter, client: str) -> None:
    for _ in range(5):
        await limiter.enforce("chat", client)


async def rejection(limiter: RateLimiter, client: str) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as caught:
        await limiter.enforce("chat", client)
    return caught.value


@pytest.fixture
async def limiter() -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter([CHAT], clock=Clock())
    yield limiter
    await limiter.close()


async def test_allowed_request_gets_the_rate_limit_headers(limiter: RateLimiter) -> None:
    headers = await limiter.enforce("chat", "a1")
    assert headers == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": "4",
        "RateLimit-Policy": '"chat";q=5;w=16',
        "RateLimit": '"chat";r=4;t=4',
    }


async def test_sixth_request_is_a_rate_limit_error(limiter: RateLimiter) -> None:
    await exhaust(limiter, "a1")
    error = await rejection(limiter, "a1")
    assert isinstance(error, RateLimitExceededError)


async def test_rejection_has_the_contract_code_and_message(limiter: RateLimiter) -> None:
    await exhaust(limiter, "a1")
    error = await rejection(limiter, "a1")
    assert error.to_dict() == {
        "code": ErrorCode.RATE_LIMIT_EXCEEDED.value,
        "message": "Rate limit exceeded",
        "retryAfter": 4,
    }


async def test_rejection_carries_retry_after_and_the_headers(limiter: RateLimiter) -> None:
    await exhaust(limiter, "a1")
    error = await rejection(limiter, "a1")
    assert error.headers == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "16",
        "RateLimit-Policy": '"chat";q=5;w=16',
        "RateLimit": '"chat";r=0;t=16',
        "Retry-After": "4",
    }


async def test_rejection_is_a_429(limiter: RateLimiter) -> None:
    await exhaust(limiter, "a1")
    error = await rejection(limiter, "a1")
    assert error.http_status == 429


async def test_request_after_retry_after_is_allowed() -> None:
    clock = Clock()
    limiter = RateLimiter([CHAT], clock=clock)
    await exhaust(limiter, "a1")
    error = await rejection(limiter, "a1")
    clock.now += error.decision.retry_after_s

    decision = await limiter.check("chat", "a1")

    assert decision.allowed


async def test_rejection_is_counted_by_policy(limiter: RateLimiter) -> None:
    await exhaust(limiter, "a1")
    before = hits("chat")
    await rejection(limiter, "a1")
    assert hits("chat") == before + 1


async def test_remaining_tokens_are_exported_per_client_hash(limiter: RateLimiter) -> None:
    await limiter.enforce("chat", "feedc0ffee000001")
    assert remaining_series("feedc0ffee000001") == 4


async def test_closing_drops_the_limiter_series(limiter: RateLimiter) -> None:
    await limiter.enforce("chat", "feedc0ffee000002")
    await limiter.close()
    assert remaining_series("feedc0ffee000002") is None


async def test_looking_without_consuming_refuses_a_blocked_client(limiter: RateLimiter) -> None:
    await exhaust(limiter, "a1")
    decision = await limiter.check("chat", "a1", consume=False)
    assert not decision.allowed


async def test_looking_without_consuming_spends_nothing(limiter: RateLimiter) -> None:
    for _ in range(10):
        await limiter.check("chat", "a1", consume=False)
    decision = await limiter.check("chat", "a1")
    assert decision.remaining == 4


async def test_disabled_limiter_allows_everything() -> None:
    limiter = RateLimiter([CHAT], enabled=False)
    for _ in range(10):
        await limiter.enforce("chat", "a1")
    decision = await limiter.check("chat", "a1")
    assert decision.allowed


async def test_disabled_limiter_adds_no_headers() -> None:
    limiter = RateLimiter([CHAT], enabled=False)
    assert await limiter.enforce("chat", "a1") == {}


async def test_unknown_policy_is_a_programming_error(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="Unknown rate limit policy 'chats'"):
        await limiter.check("chats", "a1")


async def test_without_redis_readiness_reports_memory_as_configured(limiter: RateLimiter) -> None:
    result = await limiter.check_result()
    assert (result.status, result.critical, result.fallback) == ("ok", False, "memory")


def test_settings_build_the_three_policies() -> None:
    limiter = RateLimiter.from_settings(GatewaySettings())
    assert set(limiter.policies) == {CHAT_POLICY, CONTENT_POLICY, ADMIN_AUTH_POLICY}


def test_settings_defaults_match_the_runbook() -> None:
    chat = RateLimiter.from_settings(GatewaySettings()).policies[CHAT_POLICY]
    assert (chat.capacity, chat.refill_rate) == (5, 0.333)


def test_settings_set_the_content_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENT_RATE_LIMIT_CAPACITY", "7")
    monkeypatch.setenv("CONTENT_RATE_LIMIT_REFILL_RATE", "2.5")
    content = RateLimiter.from_settings(GatewaySettings()).policies[CONTENT_POLICY]
    assert (content.capacity, content.refill_rate) == (7, 2.5)


def test_settings_can_disable_limiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMITING", "false")
    assert not RateLimiter.from_settings(GatewaySettings()).enabled


def test_client_hash_untrusted_peer_ignores_header() -> None:
    limiter = RateLimiter([CHAT], ip_hash_salt="s")
    assert limiter.client_hash("203.0.113.9", "1.2.3.4") == limiter.client_hash("203.0.113.9", None)


def test_client_hash_trusted_proxy_honours_header() -> None:
    limiter = RateLimiter([CHAT], trusted_proxies=["10.0.0.0/8"], ip_hash_salt="s")
    assert limiter.client_hash("10.0.0.2", "1.2.3.4") == limiter.client_hash("1.2.3.4", None)
