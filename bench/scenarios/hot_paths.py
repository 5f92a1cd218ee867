"""Throughput and latency of each hot path, and of the two baselines it is compared with.

Every measurement is a warm-up wrk run (not recorded) followed by a measured
one of the same shape, so caches, connections and JIT-free Python caches are
warm in both the path and its baseline.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bench.baselines import BASELINE_PATH
from bench.loadgen import LoadResult, LoadSpec, run_load
from bench.results import PathResult

if TYPE_CHECKING:
    from bench.config import BenchConfig
    from bench.results import RunResults

__all__ = [
    "BUNDLE_PATH",
    "CHAT_PATH",
    "chat_bodies",
    "measure",
    "measure_baselines",
    "measure_cached_paths",
    "measure_chat",
    "measure_uncached_item",
]

BUNDLE_PATH = "/api/v1/content/bundle"
CHAT_PATH = "/api/v1/chat"

CHAT_VISITORS = 64
"""Distinct visitors the chat load rotates over (each keeps one session)."""


def measure(spec: LoadSpec, config: BenchConfig, *, connections: int | None = None) -> LoadResult:
    """Run a warm-up, then the measured run, both bounded by the config's durations."""
    conns = connections or config.connections
    if config.warmup_s > 0:
        run_load(spec, duration_s=config.warmup_s, connections=conns)
    return run_load(spec, duration_s=config.duration_s, connections=conns)


def measure_baselines(
    results: RunResults,
    config: BenchConfig,
    *,
    bare_url: str,
    nats_url: str,
    sizes: tuple[int, int],
) -> None:
    """Record baseline 1 (bare app) and baseline 2 (one NATS request/reply)."""
    results.add_path(
        PathResult(
            key="baseline1",
            title="Baseline 1: bare Litestar, bundle bytes from memory",
            request=f"GET {BASELINE_PATH}",
            load=measure(LoadSpec(bare_url + BASELINE_PATH), config),
            response_bytes=sizes[0],
        )
    )
    results.add_path(
        PathResult(
            key="baseline2",
            title="Baseline 2: bare Litestar + one NATS request/reply",
            request=f"GET {BASELINE_PATH}",
            load=measure(LoadSpec(nats_url + BASELINE_PATH), config),
            response_bytes=sizes[1],
        )
    )


def measure_cached_paths(
    results: RunResults,
    config: BenchConfig,
    *,
    gateway_url: str,
    bundle_bytes: int,
    etag: str | None,
) -> None:
    """Measure the cached bundle, and its 304 revalidation when the gateway sends an ETag."""
    results.add_path(
        PathResult(
            key="cached_bundle",
            title="Cached content bundle",
            request=f"GET {BUNDLE_PATH}",
            load=measure(LoadSpec(gateway_url + BUNDLE_PATH), config),
            response_bytes=bundle_bytes,
            baseline="baseline1",
        )
    )
    if etag is None:
        results.failures.append("304 revalidation: the bundle response carried no ETag")
        return
    results.add_path(
        PathResult(
            key="revalidation_304",
            title="304 revalidation of the bundle",
            request=f"GET {BUNDLE_PATH} + If-None-Match",
            load=measure(
                LoadSpec(gateway_url + BUNDLE_PATH, headers=(("If-None-Match", etag),)), config
            ),
            baseline="baseline1",
        )
    )


def measure_uncached_item(
    results: RunResults,
    config: BenchConfig,
    *,
    gateway_url: str,
    item_path: str,
    item_bytes: int,
    note: str,
) -> None:
    """Measure an item read that misses the cache every time: gateway, NATS, content service, database."""
    results.add_path(
        PathResult(
            key="uncached_item",
            title="Uncached item (NATS + database)",
            request=f"GET {item_path}",
            load=measure(LoadSpec(gateway_url + item_path), config),
            response_bytes=item_bytes,
            baseline="baseline2",
            note=note,
        )
    )


def chat_bodies() -> tuple[str, ...]:
    return tuple(
        json.dumps(
            {"message": "Which projects did you build with NATS?", "visitorId": f"bench-{n}"}
        )
        for n in range(CHAT_VISITORS)
    )


def measure_chat(results: RunResults, config: BenchConfig, *, gateway_url: str) -> None:
    """Measure chat turns replied to by the fake provider, with the chat rate limit raised out of reach."""
    spec = LoadSpec(gateway_url + CHAT_PATH, method="POST", bodies=chat_bodies())
    results.add_path(
        PathResult(
            key="chat",
            title="Chat through the fake provider",
            request=f"POST {CHAT_PATH}",
            load=measure(spec, config),
            baseline="baseline2",
            note=(
                f"{CHAT_VISITORS} visitors in turn; each turn stores two messages and makes one "
                "provider call. Compared with baseline 2 for scale only: it has no target."
            ),
        )
    )
