"""Rate-limit metrics, with the per-client series bounded.

``rate_limit_hits_total{policy}`` counts rejected requests (the 429s).
``rate_limit_remaining{ip_hash,policy}`` is the whole tokens a client had left
after its last check. Clients come and go, so ``RemainingSeries`` keeps only
the most recently seen ones and drops a client's series once its bucket would
be full again: a flood of addresses can neither grow memory nor the scrape.

A check only stores its client's remaining tokens in its ``RemainingSeries``.
``RemainingCollector`` builds the gauge from them when the registry is
collected (at scrape time), so a check does not pay for a labelled gauge's
lock and label lookup.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.registry import CollectorRegistry

    from portfolio_gateway.ratelimit.bucket import BucketPolicy

__all__ = [
    "DEFAULT_MAX_REMAINING_SERIES",
    "RATE_LIMIT_HITS",
    "RATE_LIMIT_REMAINING",
    "RemainingCollector",
    "RemainingSeries",
]

RATE_LIMIT_HITS = Counter(
    "rate_limit_hits_total", "Requests rejected by a rate limit (429), by policy.", ["policy"]
)

REMAINING_NAME = "rate_limit_remaining"
REMAINING_HELP = (
    "Whole tokens a client had left after its last check, for recently seen clients only."
)
REMAINING_LABELS = ("ip_hash", "policy")

DEFAULT_MAX_REMAINING_SERIES = 1000
"""Maximum number of ``rate_limit_remaining`` series one ``RemainingSeries`` exports."""

# Orders checks across every RemainingSeries of the process, so that the last
# check of a client wins when two limiters saw it. ``next()`` on it is atomic in CPython.
_check_numbers = itertools.count()


class _Remaining(NamedTuple):
    expires_at: float
    """Clock time when the client's bucket is full again and its series is dropped."""

    tokens: int
    check_number: int


class RemainingCollector(Collector):
    """The ``rate_limit_remaining`` gauge, read from its ``RemainingSeries`` when collected.

    When several series hold the same client and policy, the value of the
    latest check is exported.
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self._sources: weakref.WeakSet[RemainingSeries] = weakref.WeakSet()
        if registry is not None:
            registry.register(self)

    def attach(self, series: RemainingSeries) -> None:
        """Export ``series`` until it is garbage-collected."""
        self._sources.add(series)

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(REMAINING_NAME, REMAINING_HELP, labels=REMAINING_LABELS)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        latest: dict[tuple[str, str], _Remaining] = {}
        for source in list(self._sources):
            for labels, remaining in source.items():
                seen = latest.get(labels)
                if seen is None or seen.check_number < remaining.check_number:
                    latest[labels] = remaining

        family = GaugeMetricFamily(REMAINING_NAME, REMAINING_HELP, labels=REMAINING_LABELS)
        for labels, remaining in latest.items():
            family.add_metric(labels, remaining.tokens)
        yield family


RATE_LIMIT_REMAINING = RemainingCollector()
"""The process's ``rate_limit_remaining`` gauge, registered in the default registry."""


class RemainingSeries:
    """The ``rate_limit_remaining`` series of one limiter, least recently updated first."""

    def __init__(
        self,
        *,
        collector: RemainingCollector = RATE_LIMIT_REMAINING,
        max_series: int = DEFAULT_MAX_REMAINING_SERIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_series < 1:
            raise ValueError("Invalid max_series. At least 1 series must be kept.")
        self._max_series = max_series
        self._clock = clock
        self._series: OrderedDict[tuple[str, str], _Remaining] = OrderedDict()
        collector.attach(self)

    def __len__(self) -> int:
        return len(self._series)

    def items(self) -> list[tuple[tuple[str, str], _Remaining]]:
        """Return a copy of the series: ``(ip_hash, policy)`` labels and their last check."""
        return list(self._series.items())

    def record(self, policy: BucketPolicy, client_hash: str, remaining: int) -> None:
        """Set the client's series, then drop idle series and, past the bound, the oldest."""
        now = self._clock()
        labels = (client_hash, policy.name)
        series = self._series
        series[labels] = _Remaining(now + policy.idle_ttl_s, remaining, next(_check_numbers))
        series.move_to_end(labels)

        while series:
            oldest = next(iter(series.values()))
            if oldest.expires_at > now and len(series) <= self._max_series:
                return
            series.popitem(last=False)

    def clear(self) -> None:
        """Drop every series this instance exported."""
        self._series.clear()
