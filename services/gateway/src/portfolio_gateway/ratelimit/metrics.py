"""Rate-limit metrics, with the per-client series bounded.

``rate_limit_hits_total{policy}`` counts rejected requests (the 429s).
``rate_limit_remaining{ip_hash,policy}`` is the whole tokens a client had left
after its last check. Clients come and go, so ``RemainingSeries`` keeps only
the most recently seen ones and drops a client's series once its bucket would
be full again: a flood of addresses can neither grow memory nor the scrape.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_gateway.ratelimit.bucket import BucketPolicy

__all__ = [
    "DEFAULT_MAX_REMAINING_SERIES",
    "RATE_LIMIT_HITS",
    "RATE_LIMIT_REMAINING",
    "RemainingSeries",
]

RATE_LIMIT_HITS = Counter(
    "rate_limit_hits_total", "Requests rejected by a rate limit (429), by policy.", ["policy"]
)
RATE_LIMIT_REMAINING = Gauge(
    "rate_limit_remaining",
    "Whole tokens a client had left after its last check, for recently seen clients only.",
    ["ip_hash", "policy"],
)

DEFAULT_MAX_REMAINING_SERIES = 1000
"""Maximum number of ``rate_limit_remaining`` series one process exports."""


class RemainingSeries:
    """The ``rate_limit_remaining`` series of one process, least recently updated first."""

    def __init__(
        self,
        *,
        gauge: Gauge = RATE_LIMIT_REMAINING,
        max_series: int = DEFAULT_MAX_REMAINING_SERIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_series < 1:
            raise ValueError("Invalid max_series. At least 1 series must be kept.")
        self._gauge = gauge
        self._max_series = max_series
        self._clock = clock
        self._expiry: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def record(self, policy: BucketPolicy, client_hash: str, remaining: int) -> None:
        """Set the client's series, then drop idle series and, past the bound, the oldest."""
        now = self._clock()
        labels = (client_hash, policy.name)
        self._expiry.pop(labels, None)
        self._expiry[labels] = now + policy.idle_ttl_s
        self._gauge.labels(*labels).set(remaining)

        while self._expiry:
            oldest, expires_at = next(iter(self._expiry.items()))
            if expires_at > now and len(self._expiry) <= self._max_series:
                return
            del self._expiry[oldest]
            self._remove(oldest)

    def clear(self) -> None:
        """Drop every series this instance exported."""
        for labels in self._expiry:
            self._remove(labels)
        self._expiry.clear()

    def _remove(self, labels: tuple[str, str]) -> None:
        # Another limiter in the same process may have dropped it already.
        with contextlib.suppress(KeyError):
            self._gauge.remove(*labels)
