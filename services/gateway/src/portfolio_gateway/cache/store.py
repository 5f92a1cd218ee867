"""The public content response cache: Redis when it is configured and up, else process memory.

Entries are whole responses (body bytes and ETag) with the wall-clock time
they were stored. An entry younger than ``CACHE_TTL_S`` is fresh; an older one
is kept ``CACHE_STALE_TTL_S`` longer, only to be served as stale when the
content service does not reply.

No stale fill. A fill reads the cache *generation* before asking the content
service and stores its answer only if the generation is still the same
(atomically, in one Lua script on Redis). Every invalidation first bumps the
generation and then deletes its keys, in one step, so a read that began before
a change can never write the old value back after the change's invalidation.
The Redis generation key is ``content-generation`` (beside, not under,
``content:*``, so clearing ``content:*`` by hand leaves it in place).

Redis failures switch to memory through ``RedisLink`` (logged once, counted,
readiness degraded). Invalidations are always applied to memory too, so the
memory cache is never behind the events; invalidations Redis missed while it
was down are made good by clearing Redis's content keys before it is read
again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from portfolio_shared.logging import get_logger
from redis.exceptions import RedisError

from portfolio_gateway.cache.flights import FillFlights
from portfolio_gateway.cache.keys import CACHE_NAMESPACE
from portfolio_gateway.cache.metrics import CACHE_INVALIDATIONS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from portfolio_shared.contract import CheckResult
    from portfolio_shared.redis_link import RedisLink
    from redis.asyncio import Redis

__all__ = ["GENERATION_KEY", "CachedResponse", "Generation", "ResponseCache"]

log = get_logger("gateway.cache")

GENERATION_KEY = f"{CACHE_NAMESPACE}-generation"
"""Redis key (after the prefix) of the counter every invalidation bumps."""

SCAN_BATCH = 500
"""Keys asked for per ``SCAN`` step when clearing Redis."""

_STORE_IF_GENERATION = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""

_INVALIDATE = """
redis.call('INCR', KEYS[1])
for index = 2, #KEYS do
  redis.call('DEL', KEYS[index])
end
return 1
"""


class CachedResponse(msgspec.Struct, array_like=True):
    """One cached public response."""

    body: bytes
    """The whole HTTP body (``{"data": ...}``) as sent."""

    etag: str
    stored_at: float
    """Wall-clock time (``time.time()``) the entry was stored, shared by all replicas."""

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.stored_at)


@dataclass(frozen=True)
class Generation:
    """Snapshot a fill takes before it requests the content service: which store, which generation."""

    backend: str
    """``redis`` or ``memory``."""

    value: str


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CachedResponse)


class ResponseCache:
    """Shared response cache with an in-process fallback (see the module docstring)."""

    def __init__(
        self,
        link: RedisLink,
        *,
        ttl_s: float,
        stale_ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.ttl_s = ttl_s
        self.stale_ttl_s = stale_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._memory: OrderedDict[str, CachedResponse] = OrderedDict()
        self._memory_generation = 0
        self._redis_needs_clear = False
        self.flights: FillFlights[CachedResponse] = FillFlights()
        """Fills in progress, so concurrent misses of one key share one upstream request."""

    # Reading

    def now(self) -> float:
        return self._clock()

    def is_fresh(self, entry: CachedResponse) -> bool:
        return entry.age_s(self._clock()) < self.ttl_s

    async def get(self, key: str) -> CachedResponse | None:
        """Return the entry under ``key``, fresh or stale, or ``None``."""
        client = await self._redis()
        if client is not None:
            try:
                raw = await client.get(self.link.key(key))
            except (RedisError, OSError) as error:
                self._redis_failed(error)
            else:
                return None if raw is None else _decoder.decode(_as_bytes(raw))
        entry = self._memory.get(key)
        if entry is None:
            return None
        if entry.age_s(self._clock()) >= self.ttl_s + self.stale_ttl_s:
            del self._memory[key]
            return None
        self._memory.move_to_end(key)
        return entry

    # Filling

    async def generation(self) -> Generation:
        """Return the current generation, to pass to ``store`` after the content service replies."""
        client = await self._redis()
        if client is not None:
            try:
                raw = await client.get(self.link.key(GENERATION_KEY))
            except (RedisError, OSError) as error:
                self._redis_failed(error)
            else:
                return Generation("redis", _as_bytes(raw).decode() if raw is not None else "")
        return Generation("memory", str(self._memory_generation))

    async def store(self, key: str, entry: CachedResponse, seen: Generation) -> bool:
        """Store ``entry`` if nothing was invalidated since ``seen`` was read; return whether it was."""
        client = await self._redis()
        if client is not None:
            if seen.backend != "redis":
                return False
            lifetime_ms = int((self.ttl_s + self.stale_ttl_s) * 1000)
            try:
                stored = await client.eval(
                    _STORE_IF_GENERATION,
                    2,
                    self.link.key(GENERATION_KEY),
                    self.link.key(key),
                    seen.value,
                    _encoder.encode(entry),
                    lifetime_ms,
                )
            except (RedisError, OSError) as error:
                self._redis_failed(error)
                return False
            return bool(stored)
        if seen.backend != "memory" or seen.value != str(self._memory_generation):
            return False
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self._max_entries:
            self._memory.popitem(last=False)
        return True

    # Invalidating

    async def invalidate(self, keys: Iterable[str], *, reason: str) -> None:
        """Drop ``keys`` from memory and Redis, bumping both generations first."""
        keys = list(keys)
        self._memory_generation += 1
        for key in keys:
            self._memory.pop(key, None)
        CACHE_INVALIDATIONS.labels(reason).inc()
        client = await self._redis()
        if client is None:
            if self.link.configured:
                self._redis_needs_clear = True
            return
        try:
            await client.eval(
                _INVALIDATE,
                1 + len(keys),
                self.link.key(GENERATION_KEY),
                *(self.link.key(key) for key in keys),
            )
        except (RedisError, OSError) as error:
            self._redis_needs_clear = True
            self._redis_failed(error)

    async def clear(self, *, reason: str) -> None:
        """Drop every content entry from memory and Redis."""
        self._memory_generation += 1
        self._memory.clear()
        CACHE_INVALIDATIONS.labels(reason).inc()
        if not self.link.configured:
            return
        self._redis_needs_clear = True
        await self._redis()

    async def _clear_redis(self) -> bool:
        client = self.link.client
        if client is None:
            return False
        try:
            await client.incr(self.link.key(GENERATION_KEY))
            pattern = self.link.key(CACHE_NAMESPACE) + ":*"
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    await client.delete(*batch)
                    batch.clear()
            if batch:
                await client.delete(*batch)
            await client.incr(self.link.key(GENERATION_KEY))
        except (RedisError, OSError) as error:
            self._redis_failed(error)
            return False
        log.info("redis content cache cleared", prefix=self.link.key_prefix or None)
        return True

    async def _redis(self) -> Redis | None:
        """Return the Redis client if Redis is up and in step with the events, else ``None``."""
        client = self.link.client
        if client is None:
            return None
        if self._redis_needs_clear:
            if not await self._clear_redis():
                return None
            self._redis_needs_clear = False
            CACHE_INVALIDATIONS.labels("redis_recovered").inc()
        return self.link.client

    def _redis_failed(self, error: BaseException) -> None:
        # Redis may have missed invalidations while failing; clear it before trusting it again.
        self._redis_needs_clear = True
        self.link.report_failure(error)

    # Operations

    @property
    def backend(self) -> str:
        """``redis`` while Redis serves the cache, else ``memory``."""
        return "redis" if self.link.client is not None else "memory"

    def memory_size(self) -> int:
        return len(self._memory)

    async def check_result(self) -> CheckResult:
        """Readiness of the cache backend: not critical, because memory takes over."""
        return self.link.check()

    async def close(self) -> None:
        await self.link.close()
