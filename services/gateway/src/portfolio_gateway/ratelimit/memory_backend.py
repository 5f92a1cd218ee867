"""In-process token buckets: the limiter without Redis, and its fallback while Redis is down.

Buckets live in this process only, so each gateway process (replica or
worker) counts separately. With N such processes and no Redis, a client may
get up to N times the capacity.
Memory stays bounded: buckets idle long enough to be full again are dropped
(a fresh bucket is identical), and past ``max_buckets`` the least recently
used one is dropped too, so a flood of addresses cannot grow the process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from portfolio_gateway.ratelimit.bucket import BucketPolicy, BucketState, take

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_MAX_BUCKETS", "MemoryBackend"]

DEFAULT_MAX_BUCKETS = 100_000
"""Maximum number of buckets one process keeps (an estimated few hundred bytes each)."""


class MemoryBackend:
    """Token buckets in a dictionary ordered by last use.

    Each check runs without awaiting, so checks from concurrent requests on
    one event loop never interleave and never lose an update.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        if max_buckets < 1:
            raise ValueError("Invalid max_buckets. The memory backend must keep at least 1 bucket.")
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[tuple[str, str], tuple[BucketState, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(
        self, policy: BucketPolicy, client_hash: str, *, consume: bool = True
    ) -> tuple[bool, float]:
        """Take one token from the client's bucket; return whether one was there and the tokens left.

        With ``consume=False`` nothing is taken (see ``bucket.take``).
        """
        now = self._clock()
        self._evict_idle(now)

        key = (policy.name, client_hash)
        stored = self._buckets.pop(key, None)
        state, allowed = take(policy, stored[0] if stored else None, now, consume=consume)
        self._buckets[key] = (state, now + policy.idle_ttl_s)

        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        return allowed, state.tokens

    def _evict_idle(self, now: float) -> None:
        # Least recently used first, and the first bucket still in use ends
        # the sweep. Policies differ in idle time, so an idle bucket may wait
        # behind an older one of a slower-refilling policy. Its stored state
        # stays correct meanwhile, and the size bound still applies.
        while self._buckets:
            _, expires_at = next(iter(self._buckets.values()))
            if expires_at > now:
                return
            self._buckets.popitem(last=False)
