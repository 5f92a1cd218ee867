"""How long and how hard a run measures: the full run and the quick one."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BenchConfig"]


@dataclass(frozen=True)
class BenchConfig:
    """Bounds of every loop in a run; ``full()`` for ``make bench``, ``quick()`` for bench-quick."""

    mode: str
    duration_s: float
    """Length of one measured wrk run, in seconds."""

    warmup_s: float
    """Length of the unmeasured wrk run before each measured one, in seconds (0: none)."""

    connections: int
    """Open connections wrk keeps busy."""

    rounds: int
    """Times each hot path and baseline is measured, in turn; the best round is kept."""

    workers: int
    """Granian workers of each gateway replica and each baseline (the gateway's default: 1)."""

    invalidation_writes: int
    """Admin writes whose propagation to the other replica is timed."""

    invalidation_with_redis: bool
    """Whether to time invalidation between two replicas sharing a Redis cache as well."""

    invalidation_deadline_s: float
    """Maximum wait for one write to show on the other replica before it counts as missed."""

    limiter_operations: int
    """Rate-limit checks (and as many Redis GETs) in the in-process comparison."""

    limiter_concurrency: int
    growth_sizes: tuple[int, ...]
    """Numbers of published items the growth tables are measured at (empty: skipped)."""

    growth_duration_s: float
    variants: bool
    """Whether to price the gateway's parts by measuring it with each one switched off."""

    profile_s: float
    """Length of the profiled load on a path whose target was missed, in seconds (0: no profile)."""

    @classmethod
    def full(cls) -> BenchConfig:
        return cls(
            mode="full",
            duration_s=10,
            warmup_s=2,
            connections=16,
            rounds=3,
            workers=1,
            invalidation_writes=300,
            invalidation_with_redis=True,
            invalidation_deadline_s=5.0,
            limiter_operations=10_000,
            limiter_concurrency=16,
            growth_sizes=(10, 100, 1000),
            growth_duration_s=5,
            variants=True,
            profile_s=8,
        )

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(
            mode="quick",
            duration_s=2,
            warmup_s=0,
            connections=16,
            rounds=1,
            workers=1,
            invalidation_writes=20,
            invalidation_with_redis=False,
            invalidation_deadline_s=2.0,
            limiter_operations=2_000,
            limiter_concurrency=16,
            growth_sizes=(),
            growth_duration_s=2,
            variants=False,
            profile_s=0,
        )
