"""Token buckets in Redis, shared by every gateway replica.

One Lua script per check reads the bucket, refills it by the Redis server's
clock (``TIME``, so replicas with skewed clocks agree), and when a token is
taken writes it back and sets its expiry, all atomically. Buckets are hashes under
``<prefix>ratelimit:<policy>:<client hash>`` with fields ``tokens`` and
``updated_us`` (server time in microseconds). A bucket expires once it would
be full again, so idle clients cost nothing. Needs Redis 5 or later (scripts
that read ``TIME`` before writing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portfolio_gateway.ratelimit.bucket import TOKEN_EPSILON, BucketPolicy

if TYPE_CHECKING:
    import redis.asyncio as redis_asyncio
    from redis.commands.core import AsyncScript

__all__ = ["BUCKET_SCRIPT", "RedisBackend"]

BUCKET_SCRIPT = """
-- KEYS[1]: bucket key. ARGV: capacity, refill rate (tokens/s), expiry (ms),
-- epsilon, cost (1 takes a token, 0 only looks).
-- Returns {1 if a token was there else 0, tokens left as a decimal string}.
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local expiry_ms = tonumber(ARGV[3])
local epsilon = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local tokens = capacity
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'updated_us')
if stored[1] and stored[2] then
  local elapsed_us = math.max(0, now_us - tonumber(stored[2]))
  tokens = math.min(capacity, tonumber(stored[1]) + elapsed_us * rate / 1000000)
end

local allowed = 0
if tokens >= 1 - epsilon then
  allowed = 1
  tokens = math.max(0, tokens - cost)
end

-- Only a taken token changes the bucket. Rejections and looks write nothing,
-- so a flood of rejected requests costs Redis reads only.
local tokens_text = string.format('%.17g', tokens)
if allowed == 1 and cost > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tokens_text, 'updated_us', string.format('%.0f', now_us))
  redis.call('PEXPIRE', KEYS[1], expiry_ms)
end
return {allowed, tokens_text}
"""
"""The whole check, run atomically by Redis. Its arithmetic is that of ``bucket.take``."""


class RedisBackend:
    """Runs ``BUCKET_SCRIPT`` (cached server-side, sent by SHA) for each check."""

    def __init__(self, key_prefix: str = "") -> None:
        self.key_prefix = key_prefix
        self._script: AsyncScript | None = None

    def key(self, policy: BucketPolicy, client_hash: str) -> str:
        """Return the bucket's key: ``<prefix>ratelimit:<policy>:<client hash>``."""
        return f"{self.key_prefix}ratelimit:{policy.name}:{client_hash}"

    async def take(
        self,
        client: redis_asyncio.Redis,
        policy: BucketPolicy,
        client_hash: str,
        *,
        consume: bool = True,
    ) -> tuple[bool, float]:
        """Take one token from the client's bucket; return whether one was there and the tokens left.

        With ``consume=False`` nothing is taken (see ``bucket.take``).

        Raises ``redis.exceptions.RedisError`` (or ``OSError``) when Redis fails,
        so that the caller can fall back to memory.
        """
        if self._script is None:
            self._script = client.register_script(BUCKET_SCRIPT)
        allowed, tokens = await self._script(
            keys=[self.key(policy, client_hash)],
            args=[
                policy.capacity,
                repr(policy.refill_rate),
                policy.idle_ttl_s * 1000,
                repr(TOKEN_EPSILON),
                1 if consume else 0,
            ],
            client=client,
        )
        return int(allowed) == 1, float(tokens)
