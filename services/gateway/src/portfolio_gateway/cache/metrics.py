"""Prometheus metrics of the response cache (the runbook's cache-miss-ratio alert reads the first two)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["CACHE_HITS", "CACHE_INVALIDATIONS", "CACHE_MISSES", "CACHE_STALE_SERVED"]

CACHE_HITS = Counter(
    "cache_hits_total", "Public content responses served from the cache.", ["cache"]
)
CACHE_MISSES = Counter(
    "cache_misses_total",
    "Public content requests the cache could not answer (asked the content service).",
    ["cache"],
)
CACHE_STALE_SERVED = Counter(
    "cache_stale_served_total",
    "Cached responses served as stale because the content service or NATS was unavailable.",
    ["cache"],
)
CACHE_INVALIDATIONS = Counter(
    "cache_invalidations_total",
    "Invalidations applied, by reason (content_changed, flush, resync, redis_recovered).",
    ["reason"],
)
