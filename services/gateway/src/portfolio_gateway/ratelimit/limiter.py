"""The gateway's rate limiter: named token-bucket policies over Redis, or memory.

``RateLimiter.check`` takes a token from the client's bucket of one policy and
returns a ``Decision``. ``enforce`` does the same and raises
``RateLimitedError`` (a 429 carrying its headers) when the bucket is empty.
With ``REDIS_URL`` set every replica shares the buckets in Redis. When Redis
fails, the check that saw the failure and every later one use in-process
buckets (the switch is logged once and counted by the ``RedisLink``, and
readiness reports ``ratelimit`` degraded) until Redis answers again. A check
never fails open: it always ends in a decision from Redis or from memory.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from portfolio_shared.errors import RateLimitExceededError
from portfolio_shared.logging import get_logger
from portfolio_shared.redis_link import RedisLink
from redis.exceptions import RedisError

from portfolio_gateway.ratelimit.bucket import BucketPolicy, Decision, decide
from portfolio_gateway.ratelimit.client_ip import (
    bucket_address,
    client_address,
    client_hash,
    parse_trusted_proxies,
)
from portfolio_gateway.ratelimit.memory_backend import DEFAULT_MAX_BUCKETS, MemoryBackend
from portfolio_gateway.ratelimit.metrics import (
    DEFAULT_MAX_REMAINING_SERIES,
    RATE_LIMIT_HITS,
    RemainingSeries,
)
from portfolio_gateway.ratelimit.redis_backend import RedisBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from portfolio_shared.contract.messages import CheckResult

    from portfolio_gateway.ratelimit.client_ip import IPNetwork
    from portfolio_gateway.settings import GatewaySettings

__all__ = [
    "ADMIN_AUTH_POLICY",
    "CHAT_POLICY",
    "CONTENT_POLICY",
    "RATE_LIMIT_MESSAGE",
    "RateLimitedError",
    "RateLimiter",
    "rate_limit_headers",
]

log = get_logger("ratelimit")

CHAT_POLICY = "chat"
"""Valid ``POST /api/v1/chat`` requests."""

CONTENT_POLICY = "content"
"""Every request under ``/api/v1/content``."""

ADMIN_AUTH_POLICY = "admin_auth"
"""Failed admin authentications."""

RATE_LIMIT_MESSAGE = "Rate limit exceeded"
"""Message of every 429, as the HTTP contract words it."""


class RateLimitedError(RateLimitExceededError):
    """A 429 with the headers its response must carry (``Retry-After`` and the rate-limit headers)."""

    def __init__(self, decision: Decision, headers: dict[str, str]) -> None:
        super().__init__(RATE_LIMIT_MESSAGE, retry_after=decision.retry_after_s)
        self.decision = decision
        self.headers = headers


def rate_limit_headers(decision: Decision, window_s: int) -> dict[str, str]:
    """Response headers describing ``decision``, plus ``Retry-After`` when it is a rejection.

    ``X-RateLimit-Reset`` and the ``t`` of ``RateLimit`` are seconds until the
    bucket is full again. The ``w`` of ``RateLimit-Policy`` is the time an
    empty bucket takes to fill. The IETF headers follow the syntax of
    draft-ietf-httpapi-ratelimit-headers (revision 08 and later).
    """
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_s),
        "RateLimit-Policy": f'"{decision.policy}";q={decision.limit};w={window_s}',
        "RateLimit": f'"{decision.policy}";r={decision.remaining};t={decision.reset_s}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after_s)
    return headers


class RateLimiter:
    """Token buckets per (policy, client hash), shared through Redis when it is configured."""

    def __init__(
        self,
        policies: Iterable[BucketPolicy],
        *,
        redis_url: str | None = None,
        redis_key_prefix: str = "",
        enabled: bool = True,
        trusted_proxies: Iterable[str] = (),
        ip_hash_salt: str = "",
        clock: Callable[[], float] = time.monotonic,
        max_memory_buckets: int = DEFAULT_MAX_BUCKETS,
        max_metric_series: int = DEFAULT_MAX_REMAINING_SERIES,
    ) -> None:
        self.policies = {policy.name: policy for policy in policies}
        self.enabled = enabled
        self.trusted_proxies: tuple[IPNetwork, ...] = parse_trusted_proxies(trusted_proxies)
        self._salt = ip_hash_salt
        self.link = RedisLink(redis_url, component="ratelimit", key_prefix=redis_key_prefix)
        self._redis = RedisBackend(redis_key_prefix)
        self._memory = MemoryBackend(clock=clock, max_buckets=max_memory_buckets)
        self._series = RemainingSeries(max_series=max_metric_series, clock=clock)
        for name in self.policies:
            RATE_LIMIT_HITS.labels(name)

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RateLimiter:
        """Build the ``chat``, ``content`` and ``admin_auth`` policies and backends from settings."""
        return cls(
            [
                BucketPolicy(
                    CHAT_POLICY, settings.rate_limit_capacity, settings.rate_limit_refill_rate
                ),
                BucketPolicy(
                    CONTENT_POLICY,
                    settings.content_rate_limit_capacity,
                    settings.content_rate_limit_refill_rate,
                ),
                BucketPolicy(
                    ADMIN_AUTH_POLICY,
                    settings.admin_auth_rate_limit_capacity,
                    settings.admin_auth_rate_limit_refill_rate,
                ),
            ],
            redis_url=settings.redis_url,
            redis_key_prefix=settings.redis_key_prefix,
            enabled=settings.rate_limiting_enabled,
            trusted_proxies=settings.trusted_proxies,
            ip_hash_salt=settings.ip_hash_salt,
        )

    # Identifying the client

    def client_hash(self, scope_client_host: str | None, forwarded_for: str | None) -> str:
        """Return the salted hash naming the client of a request (see ``client_ip``).

        IPv6 clients are named by their /64 network, the unit one host controls.
        """
        address = client_address(scope_client_host, forwarded_for, self.trusted_proxies)
        return client_hash(bucket_address(address), self._salt)

    # Checking

    async def check(self, policy: str, client_hash: str, *, consume: bool = True) -> Decision:
        """Take one token from the client's ``policy`` bucket and describe the outcome.

        With ``consume=False`` the bucket is only looked at (to reject a client
        that is already blocked before doing any work). When limiting is
        disabled every check is allowed and the bucket untouched.
        """
        bucket = self._policy(policy)
        if not self.enabled:
            return decide(bucket, allowed=True, tokens=bucket.capacity)

        allowed, tokens = await self._take(bucket, client_hash, consume=consume)
        decision = decide(bucket, allowed=allowed, tokens=tokens)

        self._series.record(bucket, client_hash, decision.remaining)
        if not allowed:
            RATE_LIMIT_HITS.labels(bucket.name).inc()
            log.debug(
                "rate limit exceeded",
                policy=bucket.name,
                client_hash=client_hash,
                retry_after_s=decision.retry_after_s,
            )
        return decision

    async def enforce(
        self, policy: str, client_hash: str, *, consume: bool = True
    ) -> dict[str, str]:
        """Check, and return the headers for the response; raise ``RateLimitedError`` when rejected.

        Returns no headers when limiting is disabled.
        """
        decision = await self.check(policy, client_hash, consume=consume)
        if not self.enabled:
            return {}
        headers = self.headers(decision)
        if not decision.allowed:
            raise RateLimitedError(decision, headers)
        return headers

    def headers(self, decision: Decision) -> dict[str, str]:
        """Response headers for ``decision`` (see ``rate_limit_headers``)."""
        return rate_limit_headers(decision, self._policy(decision.policy).window_s)

    async def _take(
        self, bucket: BucketPolicy, client_hash: str, *, consume: bool
    ) -> tuple[bool, float]:
        client = self.link.client
        if client is not None:
            try:
                return await self._redis.take(client, bucket, client_hash, consume=consume)
            except (RedisError, OSError) as error:
                self.link.report_failure(error)
        return self._memory.take(bucket, client_hash, consume=consume)

    def _policy(self, name: str) -> BucketPolicy:
        try:
            return self.policies[name]
        except KeyError:
            raise ValueError(
                f"Unknown rate limit policy {name!r}. Known policies: {', '.join(self.policies)}."
            ) from None

    # Lifecycle

    async def check_result(self) -> CheckResult:
        """Readiness of the limiter's backend: degraded (not critical) while memory replaces Redis."""
        return self.link.check()

    async def close(self) -> None:
        """Stop probing Redis, close its connections and drop this limiter's metric series."""
        self._series.clear()
        await self.link.close()
