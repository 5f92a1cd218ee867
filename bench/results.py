"""Measurements of one benchmark run, as plain dataclasses that serialise to JSON.

Ratios are computed here, once, so the Markdown report and the JSON file agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from bench.loadgen import LoadResult
    from bench.profiling import Profile

__all__ = [
    "GrowthRow",
    "LatencySummary",
    "MemoryRow",
    "OpsResult",
    "PathResult",
    "RunResults",
    "Target",
    "percentile",
]


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``samples`` (0 when there are none)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class PathResult:
    """One HTTP path under load, and the baseline it is compared with."""

    key: str
    title: str
    request: str
    load: LoadResult
    response_bytes: int = 0
    baseline: str | None = None
    """``key`` of the baseline path whose throughput is the denominator of ``ratio``."""

    ratio: float | None = None
    cpu_us: float | None = None
    """CPU time (user + system) of the serving process tree per request, in microseconds."""

    cpu_detail: dict[str, float] = field(default_factory=dict)
    """CPU µs per request of every process charged, the serving one included."""

    cpu_ratio: float | None = None
    """Baseline's CPU per request over this path's: the throughput ratio to expect when
    each has a core of its own, whatever else the machine is running."""

    note: str = ""


@dataclass
class OpsResult:
    """An in-process operation run in a bounded loop: ops per second and latency."""

    key: str
    title: str
    operations: int
    concurrency: int
    duration_s: float
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


@dataclass
class LatencySummary:
    """Many timed events: their count and percentiles, in milliseconds."""

    key: str
    title: str
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    misses: int = 0
    """Events that did not complete within the deadline (not in the percentiles)."""

    note: str = ""

    @classmethod
    def of(
        cls, key: str, title: str, samples_ms: list[float], *, misses: int = 0, note: str = ""
    ) -> LatencySummary:
        return cls(
            key=key,
            title=title,
            count=len(samples_ms),
            p50_ms=round(percentile(samples_ms, 50), 2),
            p90_ms=round(percentile(samples_ms, 90), 2),
            p99_ms=round(percentile(samples_ms, 99), 2),
            max_ms=round(max(samples_ms, default=0.0), 2),
            misses=misses,
            note=note,
        )


@dataclass
class GrowthRow:
    """One endpoint at one content size and replica count."""

    endpoint: str
    items: int
    replicas: int
    response_bytes: int
    load: LoadResult
    cpu_us: float | None = None
    """CPU µs per request of the gateway replicas together."""

    settle_s: float | None = None
    """Seconds from the last item created until every endpoint was a cache hit."""


@dataclass
class MemoryRow:
    """Resident memory of one process tree, idle and after the load, in MiB."""

    process: str
    idle_mb: float
    after_mb: float | None = None
    largest_process_mb: float | None = None
    """After the load, the largest single process of the tree (a granian worker, say)."""

    processes: int = 1


@dataclass
class Target:
    """One target of the benchmark and whether this run met it."""

    name: str
    goal: str
    measured: str
    met: bool | None
    """None when the run could not measure it."""


@dataclass
class RunResults:
    """Everything one run measured, plus the facts needed to reproduce it."""

    meta: dict[str, Any]
    paths: list[PathResult] = field(default_factory=list)
    variants: list[PathResult] = field(default_factory=list)
    """The cached bundle on gateways configured without one part each, to price the parts."""

    operations: list[OpsResult] = field(default_factory=list)
    latencies: list[LatencySummary] = field(default_factory=list)
    growth: list[GrowthRow] = field(default_factory=list)
    memory: list[MemoryRow] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Parts of the run that could not be measured, with the reason."""

    def path(self, key: str) -> PathResult | None:
        return next((path for path in self.paths if path.key == key), None)

    def add_path(self, result: PathResult) -> PathResult:
        """Record a path, computing its ratios against its baseline when known."""
        self.paths.append(self.compare(result))
        return result

    def compare(self, result: PathResult) -> PathResult:
        """Fill in ``result``'s throughput and CPU ratios against its baseline, when measured."""
        if result.baseline is not None:
            baseline = self.path(result.baseline)
            if baseline is not None and baseline.load.rps > 0:
                result.ratio = round(result.load.rps / baseline.load.rps, 3)
            if baseline is not None and baseline.cpu_us and result.cpu_us:
                result.cpu_ratio = round(baseline.cpu_us / result.cpu_us, 3)
        return result

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read_json(cls, path: Path) -> RunResults:
        """Load results written by ``write_json``, to render their report again."""
        from bench.loadgen import LoadResult
        from bench.profiling import Profile

        raw: dict[str, Any] = json.loads(path.read_text())

        def path_result(item: dict[str, Any]) -> PathResult:
            return PathResult(**{**item, "load": LoadResult(**item["load"])})

        return cls(
            meta=raw["meta"],
            paths=[path_result(item) for item in raw.get("paths", [])],
            variants=[path_result(item) for item in raw.get("variants", [])],
            operations=[OpsResult(**item) for item in raw.get("operations", [])],
            latencies=[LatencySummary(**item) for item in raw.get("latencies", [])],
            growth=[
                GrowthRow(**{**item, "load": LoadResult(**item["load"])})
                for item in raw.get("growth", [])
            ],
            memory=[MemoryRow(**item) for item in raw.get("memory", [])],
            targets=[Target(**item) for item in raw.get("targets", [])],
            profiles=[
                Profile(
                    **{
                        **item,
                        "inclusive": [tuple(pair) for pair in item["inclusive"]],
                        "self_time": [tuple(pair) for pair in item["self_time"]],
                    }
                )
                for item in raw.get("profiles", [])
            ],
            failures=raw.get("failures", []),
        )
