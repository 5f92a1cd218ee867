"""Rate limiting of the gateway: token buckets per policy and client, in Redis or memory.

``RateLimiter`` is what the routes use; ``client_ip`` decides who the client
is; ``bucket`` contains the arithmetic both backends follow.
"""

from __future__ import annotations

from portfolio_gateway.ratelimit.bucket import BucketPolicy, Decision
from portfolio_gateway.ratelimit.client_ip import client_address, client_hash
from portfolio_gateway.ratelimit.limiter import (
    ADMIN_AUTH_POLICY,
    CHAT_POLICY,
    CONTENT_POLICY,
    RateLimitedError,
    RateLimiter,
    rate_limit_headers,
)

__all__ = [
    "ADMIN_AUTH_POLICY",
    "CHAT_POLICY",
    "CONTENT_POLICY",
    "BucketPolicy",
    "Decision",
    "RateLimitedError",
    "RateLimiter",
    "client_address",
    "client_hash",
    "rate_limit_headers",
]
