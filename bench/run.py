"""One benchmark run from start to finish: start everything, measure each part, report.

Each measurement is a phase. A phase that fails (a service missing, a path
returning errors) is recorded under "not measured" with the reason and the
run goes on, so one broken part never hides the numbers of the others.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from bench.admin import GatewayClient
from bench.baselines import BASELINE_PATH
from bench.loadgen import LoadSpec
from bench.machine import machine_facts, software_versions
from bench.profiling import profile_path
from bench.results import MemoryRow, PathResult, RunResults, Target
from bench.scenarios import growth, hot_paths, invalidation, ratelimit_ops
from bench.system import BenchSystem

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from bench.config import BenchConfig
    from bench.procs import Child

__all__ = ["run_benchmarks"]

UNCACHED_ENV = {"CACHE_TTL_S": "0.001", "CACHE_STALE_TTL_S": "0"}
"""Gateway settings under which every public read misses the cache (expired at once)."""

VARIANTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("as configured by default", {}),
    ("`LOG_LEVEL=WARNING` (no per-request log line)", {"LOG_LEVEL": "WARNING"}),
    ("`RATE_LIMITING=false` (no limiter check)", {"RATE_LIMITING": "false"}),
    ("both of the above", {"LOG_LEVEL": "WARNING", "RATE_LIMITING": "false"}),
)
"""Gateway configurations the cached bundle is measured under, to price each part."""

CACHED_RATIO_TARGET = 0.7
INVALIDATION_P99_TARGET_MS = 100.0
RSS_TARGET_MB = 120.0


class Run:
    """State shared by the phases of one run."""

    def __init__(self, config: BenchConfig, work_dir: Path, command: str) -> None:
        self.config = config
        self.work_dir = work_dir
        self.started = time.monotonic()
        self.results = RunResults(
            meta={
                "command": command,
                "mode": config.mode,
                "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "elapsed_s": 0.0,
                "machine": machine_facts(),
                "load_average_start": [round(value, 2) for value in os.getloadavg()],
                "versions": software_versions(),
                "settings": asdict(config),
            }
        )
        self.system = BenchSystem(work_dir, workers=config.workers)
        self.idle_rss: dict[str, float] = {}
        self.item: dict[str, Any] | None = None
        self.read_paths: tuple[str, ...] = ()

    def phase(self, name: str, action: Callable[[], None]) -> bool:
        """Run one phase; on failure record why and carry on."""
        print(f"[bench] {name}", flush=True)
        started = time.monotonic()
        try:
            action()
        except Exception as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            reason = f"{name}: {type(error).__name__}: {message}"
            self.results.failures.append(reason)
            print(f"[bench] {reason}", flush=True)
            with (self.work_dir / "failures.log").open("a") as log:
                log.write(traceback.format_exc() + "\n")
            return False
        print(f"[bench] {name}: done in {time.monotonic() - started:.1f} s", flush=True)
        return True

    # Phases

    def start_stack(self) -> None:
        system = self.system
        system.ensure_redis()
        system.start_fake_provider()
        for kind in ("content", "chat", "health"):
            system.start_service(kind)
        for handle in [system.start_gateway(replica=n, wait=False) for n in (0, 1)]:
            handle.wait_started()
        system.wait_ready(system.gateways[0].url, parts=("content", "chat"))

    def record_idle_memory(self) -> None:
        for child in self._measured_children():
            self.idle_rss[child.name] = round(child.rss_mb(), 1)

    def _measured_children(self) -> list[Child]:
        return [*self.system.services.values(), *(g.child for g in self.system.gateways)]

    def hot_paths(self) -> None:
        """Measure the cached reads against baseline 1, then the uncached read against baseline 2."""
        self._cached_reads()
        self._uncached_reads()

    def _cached_reads(self) -> None:
        system = self.system
        gateway = system.gateways[0]
        with GatewayClient(gateway.url, system.admin_key) as client:
            bundle = client.get(hot_paths.BUNDLE_PATH)
            if bundle.status_code != 200:
                raise RuntimeError(f"the bundle returned {bundle.status_code}: {bundle.text[:200]}")
            items = client.published_items()
            if not items:
                raise RuntimeError("no published item to read")
            self.item = items[0]
        bundle_file = self.work_dir / "bundle.json"
        bundle_file.write_bytes(bundle.content)
        bare_url = system.start_bare_baseline(bundle_file)
        etag = bundle.headers.get("etag")
        cases = [
            hot_paths.Case(
                key="baseline1",
                title="Baseline 1: bare Litestar, bundle bytes from memory",
                request=f"GET {BASELINE_PATH}",
                spec=LoadSpec(bare_url + BASELINE_PATH),
                server=system.baselines["bare"],
                response_bytes=len(bundle.content),
            ),
            hot_paths.Case(
                key="cached_bundle",
                title="Cached content bundle",
                request=f"GET {hot_paths.BUNDLE_PATH}",
                spec=LoadSpec(gateway.url + hot_paths.BUNDLE_PATH),
                server=gateway.child,
                response_bytes=len(bundle.content),
                baseline="baseline1",
            ),
        ]
        if etag is None:
            self.results.failures.append("304 revalidation: the bundle response carried no ETag")
        else:
            cases.append(
                hot_paths.Case(
                    key="revalidation_304",
                    title="304 revalidation of the bundle",
                    request=f"GET {hot_paths.BUNDLE_PATH} + If-None-Match",
                    spec=LoadSpec(
                        gateway.url + hot_paths.BUNDLE_PATH, headers=(("If-None-Match", etag),)
                    ),
                    server=gateway.child,
                    baseline="baseline1",
                ),
            )
        hot_paths.measure_cases(self.results, self.config, cases)

    def _uncached_reads(self) -> None:
        with (
            self._read_items(),
            GatewayClient(self.system.gateways[0].url, self.system.admin_key) as client,
        ):
            self._measure_uncached(client)

    @contextlib.contextmanager
    def _read_items(self) -> Iterator[None]:
        """Publish the uncached read's items (``read_paths``) and remove them afterwards.

        They are removed for good, so later phases see the sample content only and the
        same slugs can be created again.
        """
        with GatewayClient(self.system.gateways[0].url, self.system.admin_key) as client:
            created = [
                client.create(hot_paths.read_item(number)) for number in range(hot_paths.READ_ITEMS)
            ]
            self.read_paths = tuple(
                f"/api/v1/content/{item['type']}/{item['slug']}" for item in created
            )
            try:
                yield
            finally:
                # A profile restarts the content service, so wait until it serves again.
                self.system.wait_ready(self.system.gateways[0].url, parts=("content",))
                for item in created:
                    client.delete(str(item["id"]), hard=True)

    def _measure_uncached(self, client: GatewayClient) -> None:
        system = self.system
        item = client.get(self.read_paths[0])
        if item.status_code != 200:
            raise RuntimeError(f"{self.read_paths[0]} returned {item.status_code}")
        sizes = {len(client.get(path).content) for path in self.read_paths}
        item_file = self.work_dir / "item.json"
        item_file.write_bytes(item.content)

        uncached = system.start_gateway(replica=9, env=UNCACHED_ENV, wait=False)
        nats_url = system.start_nats_baseline(item_file)
        try:
            uncached.wait_started()
            with GatewayClient(uncached.url, system.admin_key) as uncached_client:
                uncached_client.get(self.read_paths[0])
                cache_header = uncached_client.get(self.read_paths[0]).headers.get(
                    "x-cache", "absent"
                )
            cases = [
                hot_paths.Case(
                    key="baseline2",
                    title="Baseline 2: bare Litestar + one NATS request/reply",
                    request=f"GET {BASELINE_PATH}",
                    spec=LoadSpec(nats_url + BASELINE_PATH),
                    server=system.baselines["nats"],
                    response_bytes=len(item.content),
                ),
                hot_paths.Case(
                    key="uncached_item",
                    title="Uncached item (NATS + database)",
                    request=f"GET /api/v1/content/project/bench-read-{{0000..{len(self.read_paths) - 1:04d}}}",
                    spec=LoadSpec(uncached.url + self.read_paths[0], paths=self.read_paths),
                    server=uncached.child,
                    also_charged=(system.services["content-0"],),
                    response_bytes=len(item.content),
                    baseline="baseline2",
                    note=(
                        "a gateway replica with `CACHE_TTL_S=0.001`, so every read expires at once "
                        f"(`X-Cache` on a repeated read: `{cache_header}`). The load rotates over "
                        f"{len(self.read_paths)} published items of "
                        f"{' or '.join(str(size) for size in sorted(sizes))} bytes, so concurrent "
                        "requests read different items and none shares another's fill. Its CPU "
                        "column is the gateway's alone; the content service's is listed below"
                    ),
                ),
            ]
            hot_paths.measure_cases(self.results, self.config, cases)
        finally:
            system.stop_child(uncached.child)
            system.gateways.remove(uncached)

    def chat(self) -> None:
        gateway = self.system.gateways[0]
        bodies = hot_paths.chat_bodies()
        probe = httpx.post(
            gateway.url + hot_paths.CHAT_PATH,
            content=bodies[0],
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        if probe.status_code != 200:
            raise RuntimeError(f"a chat turn returned {probe.status_code}: {probe.text[:200]}")
        hot_paths.measure_cases(
            self.results,
            self.config,
            [
                hot_paths.Case(
                    key="chat",
                    title="Chat through the fake provider",
                    request=f"POST {hot_paths.CHAT_PATH}",
                    spec=LoadSpec(gateway.url + hot_paths.CHAT_PATH, method="POST", bodies=bodies),
                    server=gateway.child,
                    also_charged=tuple(
                        child
                        for child in (self.system.services.get("chat-0"), self.system.fake_llm)
                        if child is not None
                    ),
                    timeout_s=10.0,
                    response_bytes=len(probe.content),
                    baseline="baseline2",
                    note=(
                        f"{hot_paths.CHAT_VISITORS} visitors in turn; each turn stores two "
                        "messages and makes one provider call. Compared with baseline 2 for "
                        "scale only: it has no target."
                    ),
                )
            ],
        )

    def variants(self) -> None:
        """Measure the cached bundle on a fresh replica per configuration, next to baseline 1."""
        system, config = self.system, self.config
        baseline = self.results.path("baseline1")
        if baseline is None or "bare" not in system.baselines:
            raise RuntimeError("baseline 1 was not measured")
        for label, env in VARIANTS:
            handle = system.start_gateway(replica=7, env=env)
            try:
                spec = LoadSpec(handle.url + hot_paths.BUNDLE_PATH)
                measured = hot_paths.measure_once(spec, config, handle.child)
            finally:
                system.stop_child(handle.child)
                system.gateways.remove(handle)
            self.results.variants.append(
                self.results.compare(
                    PathResult(
                        key=f"variant:{label}",
                        title=f"Cached bundle, {label}",
                        request=f"GET {hot_paths.BUNDLE_PATH}",
                        load=measured.load,
                        cpu_us=measured.cpu_us,
                        baseline="baseline1",
                    )
                )
            )

    def rate_limit(self) -> None:
        assert self.system.redis is not None
        self.results.operations.extend(
            ratelimit_ops.measure_rate_limit_ops(
                self.system.redis.url,
                operations=self.config.limiter_operations,
                concurrency=self.config.limiter_concurrency,
                rounds=self.config.rounds,
            )
        )

    def invalidation(self) -> None:
        """Time writes on replica 0 until replica 1 serves them: memory caches, then Redis."""
        if self.item is None:
            raise RuntimeError("no published item was found to write to")
        system = self.system
        self._time_invalidation(
            system.gateways[0].url,
            system.gateways[1].url,
            key="invalidation",
            title="Memory cache per replica: write on replica 0 → served by replica 1",
        )
        if not self.config.invalidation_with_redis:
            return
        redis_env = {
            "REDIS_URL": system.ensure_redis(),
            "REDIS_KEY_PREFIX": f"{system.namespace}:",
        }
        first = system.start_gateway(replica=3, env=redis_env, wait=False)
        second = system.start_gateway(replica=4, env=redis_env, wait=False)
        first.wait_started()
        second.wait_started()
        try:
            self._time_invalidation(
                first.url,
                second.url,
                key="invalidation_redis",
                title="Shared Redis cache: write on replica 0 → served by replica 1",
            )
        finally:
            for handle in (first, second):
                system.stop_child(handle.child)
                system.gateways.remove(handle)

    def _time_invalidation(self, writer_url: str, reader_url: str, *, key: str, title: str) -> None:
        assert self.item is not None
        with (
            GatewayClient(writer_url, self.system.admin_key) as writer,
            GatewayClient(reader_url, self.system.admin_key) as reader,
        ):
            tap = invalidation.EventTap(self.system.nats_url, self.system.namespace)
            admin_item = writer.get_data(f"/api/v1/admin/content/{self.item['id']}")
            with tap:
                self.results.latencies.extend(
                    invalidation.measure_invalidation(
                        writer,
                        reader,
                        admin_item,
                        writes=self.config.invalidation_writes,
                        deadline_s=self.config.invalidation_deadline_s,
                        tap=tap,
                        key=key,
                        title=title,
                    )
                )

    def record_memory_after(self) -> None:
        for child in self._measured_children():
            self.results.memory.append(
                MemoryRow(
                    process=child.name,
                    idle_mb=self.idle_rss.get(child.name, 0.0),
                    after_mb=round(child.rss_mb(), 1),
                    largest_process_mb=round(child.largest_rss_mb(), 1),
                    processes=child.process_count(),
                )
            )

    def growth(self) -> None:
        config, system = self.config, self.system
        system.stop_services()
        database = self.work_dir / "data" / "growth.db"
        content_env = {"TURSO_DATABASE_URL": f"file:{database}", "SEED_SAMPLE_CONTENT": "false"}
        system.start_service("content", env=content_env)
        system.start_service("health")
        for handle in [system.start_gateway(replica=n, wait=False) for n in (0, 1)]:
            handle.wait_started()
        system.wait_ready(system.gateways[0].url)
        idle = {child.name: round(child.rss_mb(), 1) for child in self._measured_children()}
        gateways = list(system.gateways)
        existing = 0
        with GatewayClient(gateways[0].url, system.admin_key) as client:
            for size in config.growth_sizes:
                existing = growth.grow_to(client, size, existing)
                self.results.growth.extend(
                    growth.measure_growth_step(client, gateways, size, config)
                )
        for child in self._measured_children():
            self.results.memory.append(
                MemoryRow(
                    process=f"{child.name} (after growth, {existing} items)",
                    idle_mb=idle.get(child.name, 0.0),
                    after_mb=round(child.rss_mb(), 1),
                    largest_process_mb=round(child.largest_rss_mb(), 1),
                    processes=child.process_count(),
                )
            )

    # Targets

    def judge_targets(self) -> None:
        results = self.results
        for key, baseline, label in (
            ("cached_bundle", "baseline 1", "Cached bundle throughput"),
            ("uncached_item", "baseline 2", "Uncached item throughput"),
        ):
            path = results.path(key)
            cpu = (
                ""
                if path is None or path.cpu_ratio is None
                else f" (CPU ratio {path.cpu_ratio:.2f})"
            )
            results.targets.append(
                Target(
                    name=label,
                    goal=f">= {CACHED_RATIO_TARGET} of {baseline}",
                    measured="-"
                    if path is None or path.ratio is None
                    else f"{path.ratio:.2f}{cpu}",
                    met=None
                    if path is None or path.ratio is None
                    else path.ratio >= CACHED_RATIO_TARGET,
                )
            )
        timed = [
            s
            for s in results.latencies
            if s.key.startswith("invalidation") and not s.key.endswith("_event")
        ]
        latency = max(timed, key=lambda summary: summary.p99_ms, default=None)
        results.targets.append(
            Target(
                name="Invalidation p99",
                goal=f"< {INVALIDATION_P99_TARGET_MS:.0f} ms, no write missed",
                measured="-"
                if latency is None
                else f"{latency.p99_ms:.1f} ms, worst of {len(timed)} setups "
                f"({sum(s.misses for s in timed)} missed)",
                met=None
                if latency is None or latency.count == 0
                else latency.p99_ms < INVALIDATION_P99_TARGET_MS
                and all(s.misses == 0 for s in timed),
            )
        )
        after = [row for row in results.memory if row.after_mb is not None]
        worst = max(after, key=lambda row: row.after_mb or 0.0, default=None)
        results.targets.append(
            Target(
                name="Resident memory after load",
                goal=f"each service < {RSS_TARGET_MB:.0f} MiB",
                measured="-"
                if worst is None
                else f"max {worst.after_mb:.0f} MiB ({worst.process})",
                met=None
                if worst is None
                else all((row.after_mb or 0.0) < RSS_TARGET_MB for row in after),
            )
        )

    def profile_missed(self, output_dir: Path) -> None:
        """Profile the gateway on each throughput path whose target was missed."""
        for key in ("cached_bundle", "uncached_item"):
            result = self.results.path(key)
            if result is None or result.ratio is None or result.ratio >= CACHED_RATIO_TARGET:
                continue
            with self._read_items() if key == "uncached_item" else contextlib.nullcontext():
                path, paths, env, content_too = {
                    "cached_bundle": (hot_paths.BUNDLE_PATH, (), None, False),
                    "uncached_item": (self.read_paths[0], self.read_paths, UNCACHED_ENV, True),
                }[key]
                self.results.profiles.extend(
                    profile_path(
                        self.system,
                        label=result.title,
                        path=path,
                        duration_s=self.config.profile_s,
                        connections=self.config.connections,
                        output_dir=output_dir,
                        env=env,
                        content_too=content_too,
                        paths=paths,
                    )
                )

    def finish(self) -> RunResults:
        self.results.meta["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.results.meta["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
        return self.results


def run_benchmarks(
    config: BenchConfig, work_dir: Path, command: str, profile_dir: Path
) -> RunResults:
    """Run every phase the config enables and return the measurements.

    Profiles of missed targets are written to ``profile_dir``.
    """
    run = Run(config, work_dir, command)
    with run.system:
        if run.phase("start the stack", run.start_stack):
            run.phase("memory at idle", run.record_idle_memory)
            run.phase("hot paths and baselines", run.hot_paths)
            if config.variants:
                run.phase("price of the gateway's parts", run.variants)
            run.phase("chat", run.chat)
            run.phase("rate-limit check against Redis GET", run.rate_limit)
            run.phase("invalidation latency", run.invalidation)
            run.phase("memory after load", run.record_memory_after)
            if config.profile_s > 0:
                run.phase("profiles of missed targets", lambda: run.profile_missed(profile_dir))
            if config.growth_sizes:
                run.phase("growth", run.growth)
        run.judge_targets()
    return run.finish()
