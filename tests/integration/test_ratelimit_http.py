"""Rate limiting through real gateway processes: shared Redis buckets, memory per replica,
Retry-After, X-Forwarded-For rules and a Redis outage, all over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import redis.asyncio as redis_asyncio
from portfolio_shared.testing.servers import ManagedServer

if TYPE_CHECKING:
    from collections.abc import Callable

    from stack import Stack

    MakeStack = Callable[..., Stack]

CHAT_PATH = "/api/v1/chat"
CONTENT_PATH = "/api/v1/content"

REQUEST_TIMEOUT_S = 30.0
"""Maximum time one request may take, in seconds (generous for a busy test machine)."""

MAX_REQUESTS_UNTIL_REJECTED = 20
"""Chat requests sent before giving up on seeing a 429 (5 fit the bucket, refill adds a few)."""

RECOVERY_DEADLINE_S = 20.0
"""Maximum wait for the gateway to notice that Redis is back, in seconds."""


def chat_body() -> dict[str, str]:
    return {"message": "What have you built?", "visitorId": "visitor-ratelimit"}


async def post_chats(
    urls: list[str], count: int, headers: list[dict[str, str]] | None = None
) -> list[httpx.Response]:
    """Send ``count`` chat requests at once, spread round-robin over ``urls``."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
        return await asyncio.gather(
            *(
                client.post(
                    urls[number % len(urls)] + CHAT_PATH,
                    json=chat_body(),
                    headers=headers[number] if headers else None,
                )
                for number in range(count)
            )
        )


async def post_chat(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
        return await client.post(url + CHAT_PATH, json=chat_body(), headers=headers)


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def rejected(responses: list[httpx.Response]) -> int:
    """Count the 429s. Every other response passed the limiter, whatever the chat service did next."""
    return sum(response.status_code == 429 for response in responses)


def random_address() -> str:
    return f"198.51.100.{secrets.randbelow(254) + 1}"


# Shared buckets and per-replica buckets


async def test_shared_redis_two_replicas_admit_5(make_stack: MakeStack) -> None:
    stack = make_stack(replicas={"gateway": 2}, redis=True)
    responses = await post_chats(stack.gateway_urls(), 20)
    assert rejected(responses) == 15


async def test_memory_buckets_count_per_replica(make_stack: MakeStack) -> None:
    stack = make_stack(replicas={"gateway": 2})
    first, second = stack.gateway_urls()

    on_first = await post_chats([first], 10)
    on_second = await post_chats([second], 10)

    assert rejected(on_first) == 5
    assert rejected(on_second) == 5


# The 429 and recovery


async def test_rejection_headers_body_and_metrics(make_stack: MakeStack) -> None:
    stack = make_stack()

    allowed = await post_chat(stack.gateway_url)
    response = await first_rejection(stack.gateway_url)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
        metrics = (await client.get(stack.gateway_url + "/api/metrics")).text

    assert allowed.headers["X-RateLimit-Remaining"] == "4"
    assert response.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert response.json()["error"]["retryAfter"] == int(response.headers["Retry-After"])
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= 0
    assert response.headers["RateLimit-Policy"] == '"chat";q=5;w=16'
    assert response.headers["RateLimit"].startswith('"chat";r=0;t=')
    # The exposition merger adds service and instance labels, in sorted order.
    assert re.search(r'rate_limit_hits_total\{[^}]*policy="chat"[^}]*\} 1\.0', metrics)
    assert re.search(
        r'rate_limit_remaining\{[^}]*ip_hash="[0-9a-f]{16}"[^}]*policy="chat"[^}]*\} 0\.0', metrics
    )
    assert "127.0.0.1" not in metrics


async def test_retry_after_retry_after_seconds_succeeds(make_stack: MakeStack) -> None:
    stack = make_stack(env={"RATE_LIMIT_REFILL_RATE": "0.5"})
    first_429 = await first_rejection(stack.gateway_url)
    rejected_at = time.monotonic()
    retry_after = int(first_429.headers["Retry-After"])

    # Rejected requests in between must not push recovery back.
    in_between = await post_chats([stack.gateway_url], 5)
    await asyncio.sleep(max(0.0, rejected_at + retry_after - time.monotonic()))
    retried = await post_chat(stack.gateway_url)

    assert rejected(in_between) == 5
    assert retried.status_code == 200


async def first_rejection(url: str) -> httpx.Response:
    """Send chat requests one at a time until one is rejected, and return that 429."""
    for _ in range(MAX_REQUESTS_UNTIL_REJECTED):
        response = await post_chat(url)
        if response.status_code == 429:
            return response
    raise AssertionError(f"no 429 after {MAX_REQUESTS_UNTIL_REJECTED} chat requests")


# Who the client is


async def test_spoofed_forwarded_for_from_untrusted_peer_no_bypass(make_stack: MakeStack) -> None:
    stack = make_stack()
    spoofed = [{"X-Forwarded-For": random_address()} for _ in range(10)]
    responses = await post_chats([stack.gateway_url], 10, spoofed)
    assert rejected(responses) == 5


async def test_forwarded_for_from_trusted_proxy_is_honoured(make_stack: MakeStack) -> None:
    stack = make_stack(env={"TRUSTED_PROXIES": "127.0.0.1/32"})
    first_client = {"X-Forwarded-For": "198.51.100.1"}
    await post_chats([stack.gateway_url], 5, [first_client] * 5)

    first_again = await post_chat(stack.gateway_url, first_client)
    second_client = await post_chat(stack.gateway_url, {"X-Forwarded-For": "198.51.100.2"})
    # The client is the rightmost untrusted entry, whatever it wrote to its left.
    spoofing_client = [{"X-Forwarded-For": f"{random_address()}, 203.0.113.5"} for _ in range(10)]
    spoofed = await post_chats([stack.gateway_url], 10, spoofing_client)

    assert first_again.status_code == 429
    assert second_client.status_code != 429
    assert rejected(spoofed) == 5


# Routes that are limited and routes that are not


async def test_content_limited_and_health_not(make_stack: MakeStack) -> None:
    stack = make_stack(
        env={"CONTENT_RATE_LIMIT_CAPACITY": "2", "CONTENT_RATE_LIMIT_REFILL_RATE": "0.1"}
    )
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
        content = [await client.get(stack.gateway_url + CONTENT_PATH) for _ in range(3)]
        health = [await client.get(stack.gateway_url + "/api/health/live") for _ in range(20)]

    assert content[0].headers["X-RateLimit-Limit"] == "2"
    assert content[0].headers["RateLimit-Policy"] == '"content";q=2;w=20'
    assert content[2].status_code == 429
    assert statuses(health) == {200: 20}
    assert all("X-RateLimit-Limit" not in response.headers for response in health)


# Redis failing under a running system


async def test_redis_stopped_mid_run_causes_no_500(
    make_stack: MakeStack, own_redis: ManagedServer
) -> None:
    stack = make_stack(env={"REDIS_URL": own_redis.url, "REDIS_KEY_PREFIX": "rl-outage:"})
    before = await post_chats([stack.gateway_url], 3)
    own_redis.stop_process_only()

    during = await post_chats([stack.gateway_url], 20)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
        ready = await client.get(stack.gateway_url + "/api/health/ready")

    assert statuses(before) == {200: 3}
    assert max(response.status_code for response in during) < 500
    assert rejected(during) >= 15  # memory still limits, so the limiter never fails open
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["ratelimit"] == "error (fallback: memory)"


async def test_limiter_returns_to_redis_after_outage(
    make_stack: MakeStack, own_redis: ManagedServer
) -> None:
    stack = make_stack(env={"REDIS_URL": own_redis.url, "REDIS_KEY_PREFIX": "rl-return:"})
    own_redis.stop_process_only()
    await post_chat(stack.gateway_url)
    own_redis.restart()

    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    keys: list[bytes] = []
    client = redis_asyncio.from_url(own_redis.url)
    try:
        while not keys and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            await post_chat(stack.gateway_url)
            keys = [key async for key in client.scan_iter(match="rl-return:ratelimit:chat:*")]
    finally:
        await client.aclose()
    assert len(keys) == 1
