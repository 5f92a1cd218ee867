"""Throughput, latency and CPU cost of each hot path and of the two baselines.

Paths and baselines are measured in turn, ``config.rounds`` times, and each
keeps its best round: other processes on a shared machine can only slow a run
down, so the best round is the closest to the path's own cost. Each case also
records the CPU time its server process tree spent per request, which stays
comparable when the machine is busy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.loadgen import LoadResult, LoadSpec, run_load
from bench.results import PathResult

if TYPE_CHECKING:
    from bench.config import BenchConfig
    from bench.procs import Child
    from bench.results import RunResults

__all__ = [
    "BUNDLE_PATH",
    "CHAT_PATH",
    "READ_ITEMS",
    "Case",
    "Measured",
    "chat_bodies",
    "measure_cases",
    "measure_once",
    "read_item",
]

BUNDLE_PATH = "/api/v1/content/bundle"
CHAT_PATH = "/api/v1/chat"

CHAT_VISITORS = 64
"""Distinct visitors the chat load rotates over (each keeps one session)."""

READ_ITEMS = 64
"""Distinct items the uncached read rotates over.

The gateway lets concurrent misses of one item share one request to the
content service. Rotating over many more items than there are connections
keeps concurrent requests on different items, so each request is one NATS
request and one database read.
"""


@dataclass(frozen=True)
class Case:
    """One path to measure: what to send, which process serves it, what it compares with."""

    key: str
    title: str
    request: str
    spec: LoadSpec
    server: Child | None
    """The process tree whose CPU time is charged to the requests."""

    also_charged: tuple[Child, ...] = ()
    """Further processes the requests pass through (services, provider), reported apart."""

    response_bytes: int = 0
    baseline: str | None = None
    timeout_s: float = 2.0
    """A response slower than this counts as an error (wrk's ``--timeout``)."""

    note: str = ""


@dataclass(frozen=True)
class Measured:
    """One measured run: its load numbers and the CPU µs per request of each charged process."""

    load: LoadResult
    cpu_us: float | None
    cpu_detail: dict[str, float]


def measure_once(
    spec: LoadSpec,
    config: BenchConfig,
    server: Child | None,
    *,
    also_charged: tuple[Child, ...] = (),
    warm_up: bool = True,
    timeout_s: float = 2.0,
) -> Measured:
    """Run an optional warm-up, then one measured run, and charge CPU time to its requests."""
    if warm_up and config.warmup_s > 0:
        run_load(
            spec, duration_s=config.warmup_s, connections=config.connections, timeout_s=timeout_s
        )
    charged = [child for child in (server, *also_charged) if child is not None]
    before = {child.name: child.cpu_s() for child in charged}
    load = run_load(
        spec, duration_s=config.duration_s, connections=config.connections, timeout_s=timeout_s
    )
    if load.requests == 0:
        return Measured(load, None, {})
    detail = {
        child.name: round((child.cpu_s() - before[child.name]) * 1e6 / load.requests, 1)
        for child in charged
    }
    cpu_us = detail.get(server.name) if server is not None else None
    return Measured(load, cpu_us, detail)


def measure_cases(results: RunResults, config: BenchConfig, cases: list[Case]) -> None:
    """Measure every case ``config.rounds`` times in turn and record each one's best round."""
    best: dict[str, Measured] = {}
    for round_number in range(config.rounds):
        for case in cases:
            measured = measure_once(
                case.spec,
                config,
                case.server,
                also_charged=case.also_charged,
                warm_up=round_number == 0,
                timeout_s=case.timeout_s,
            )
            best_so_far = best.get(case.key)
            if best_so_far is None or measured.load.rps > best_so_far.load.rps:
                best[case.key] = measured
    for case in cases:
        measured = best[case.key]
        results.add_path(
            PathResult(
                key=case.key,
                title=case.title,
                request=case.request,
                load=measured.load,
                response_bytes=case.response_bytes,
                baseline=case.baseline,
                cpu_us=measured.cpu_us,
                cpu_detail=measured.cpu_detail,
                note=case.note,
            )
        )


def read_item(number: int) -> dict[str, object]:
    """Return the admin body of uncached-read item ``number``; every item has the same size."""
    return {
        "type": "project",
        "slug": f"bench-read-{number:04d}",
        "status": "published",
        "sortOrder": 1000 + number,
        "data": {
            "title": f"Benchmark read {number:04d}",
            "summary": "An item the uncached read benchmark fetches through NATS and the database.",
            "tags": ["python", "nats", "sqlite"],
        },
    }


def chat_bodies() -> tuple[str, ...]:
    """Return one chat request body per benchmark visitor."""
    return tuple(
        json.dumps(
            {"message": "Which projects did you build with NATS?", "visitorId": f"bench-{n}"}
        )
        for n in range(CHAT_VISITORS)
    )
