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
    "Case",
    "chat_bodies",
    "measure_cases",
    "measure_once",
]

BUNDLE_PATH = "/api/v1/content/bundle"
CHAT_PATH = "/api/v1/chat"

CHAT_VISITORS = 64
"""Distinct visitors the chat load rotates over (each keeps one session)."""


@dataclass(frozen=True)
class Case:
    """One path to measure: what to send, which process serves it, what it compares with."""

    key: str
    title: str
    request: str
    spec: LoadSpec
    server: Child | None
    """The process tree whose CPU time is charged to the requests."""

    response_bytes: int = 0
    baseline: str | None = None
    note: str = ""


def measure_once(
    spec: LoadSpec, config: BenchConfig, server: Child | None, *, warm_up: bool = True
) -> tuple[LoadResult, float | None]:
    """Run an optional warm-up, then one measured run; return it and the CPU µs per request."""
    if warm_up and config.warmup_s > 0:
        run_load(spec, duration_s=config.warmup_s, connections=config.connections)
    cpu_before = server.cpu_s() if server is not None else 0.0
    load = run_load(spec, duration_s=config.duration_s, connections=config.connections)
    if server is None or load.requests == 0:
        return load, None
    cpu_us = (server.cpu_s() - cpu_before) * 1e6 / load.requests
    return load, round(cpu_us, 1)


def measure_cases(results: RunResults, config: BenchConfig, cases: list[Case]) -> None:
    """Measure every case ``config.rounds`` times in turn and record each one's best round."""
    best: dict[str, tuple[LoadResult, float | None]] = {}
    for round_number in range(config.rounds):
        for case in cases:
            load, cpu_us = measure_once(case.spec, config, case.server, warm_up=round_number == 0)
            kept = best.get(case.key)
            if kept is None or load.rps > kept[0].rps:
                best[case.key] = (load, cpu_us)
    for case in cases:
        load, cpu_us = best[case.key]
        results.add_path(
            PathResult(
                key=case.key,
                title=case.title,
                request=case.request,
                load=load,
                response_bytes=case.response_bytes,
                baseline=case.baseline,
                cpu_us=cpu_us,
                note=case.note,
            )
        )


def chat_bodies() -> tuple[str, ...]:
    """Return one chat request body per benchmark visitor."""
    return tuple(
        json.dumps(
            {"message": "Which projects did you build with NATS?", "visitorId": f"bench-{n}"}
        )
        for n in range(CHAT_VISITORS)
    )
