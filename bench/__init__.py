"""Benchmark harness: every hot path of the stack measured against a baseline in the same run.

``python -m bench`` (``make bench``) starts the baselines and the real services
on loopback, drives them with ``wrk``, and writes ``docs/benchmarks.md`` plus a
JSON results file. ``python -m bench --quick`` (``make bench-quick``) runs a
short version and prints one line of key ratios. Every load loop is bounded in
request count and time, and aims only at 127.0.0.1.
"""

from __future__ import annotations

__all__: list[str] = []
