"""Percentiles, ratios, profile summaries and the report, from fixed inputs."""

from __future__ import annotations

from pathlib import Path

from bench.loadgen import LoadResult
from bench.profiling import summarise_raw
from bench.report import key_ratios_line, render_markdown
from bench.results import PathResult, RunResults, percentile


def _load(rps: float) -> LoadResult:
    return LoadResult(
        requests=int(rps),
        duration_s=1.0,
        rps=rps,
        p50_ms=1.0,
        p90_ms=2.0,
        p99_ms=3.0,
        max_ms=4.0,
        mean_ms=1.5,
        errors=0,
        connections=4,
    )


def test_percentile_uses_the_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([], 99) == 0.0


def test_path_ratio_is_against_its_baseline() -> None:
    results = RunResults(meta={})
    results.add_path(PathResult(key="baseline1", title="b1", request="GET /", load=_load(1000)))
    path = results.add_path(
        PathResult(
            key="cached_bundle", title="c", request="GET /", load=_load(800), baseline="baseline1"
        )
    )
    assert path.ratio == 0.8


def test_raw_profile_summary_counts_self_and_inclusive_samples() -> None:
    raw = (
        'process 1:"python";main (a.py);handle (b.py) 3\n'
        'process 1:"python";main (a.py) 1\n'
        'process 9:"python -m x";idle (c.py) 1\n'
    )
    total, inclusive, self_time = summarise_raw(raw)
    assert total == 4
    assert inclusive[0] == ("main (a.py)", 100.0)
    assert self_time[0] == ("handle (b.py)", 75.0)


def test_report_and_key_line_render_a_partial_run() -> None:
    results = RunResults(
        meta={
            "command": "make bench",
            "mode": "full",
            "started_at": "2026-01-01 00:00 UTC",
            "elapsed_s": 1.0,
            "machine": {"cores": 2, "cpu": "cpu", "memory_gib": 1.0, "kernel": "6"},
            "versions": {"python": "3.11"},
            "settings": {
                "connections": 4,
                "duration_s": 1,
                "warmup_s": 0,
                "workers": 1,
                "rounds": 1,
            },
        },
        failures=["chat: RuntimeError: no chat service"],
    )
    results.add_path(PathResult(key="baseline1", title="b1", request="GET /", load=_load(10)))
    assert "## Not measured in this run" in render_markdown(results)
    assert key_ratios_line(results).startswith("key ratios: bundle/b1=-")


def test_results_read_back_render_the_same_report(tmp_path: Path) -> None:
    results = RunResults(
        meta={
            "command": "make bench",
            "mode": "full",
            "started_at": "2026-01-01 00:00 UTC",
            "elapsed_s": 1.0,
            "machine": {"cores": 2, "cpu": "cpu", "memory_gib": 1.0, "kernel": "6"},
            "versions": {"python": "3.11"},
            "settings": {
                "connections": 4,
                "duration_s": 1,
                "warmup_s": 0,
                "workers": 1,
                "rounds": 1,
            },
        }
    )
    results.add_path(PathResult(key="baseline1", title="b1", request="GET /", load=_load(10)))
    results.write_json(tmp_path / "results.json")
    assert render_markdown(RunResults.read_json(tmp_path / "results.json")) == render_markdown(
        results
    )
