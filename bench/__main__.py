"""``python -m bench``: run the benchmarks and write the report.

The full run (``make bench``) writes ``docs/benchmarks.md``,
``docs/benchmarks.json`` and a copy of the JSON under ``bench-results/``;
``--quick`` (``make bench-quick``) writes only under ``bench-results/``. Both
end by printing one line of key ratios.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.config import BenchConfig
from bench.loadgen import ensure_wrk
from bench.report import key_ratios_line, render_markdown
from bench.results import RunResults
from bench.run import run_benchmarks
from bench.system import REPO_ROOT

__all__ = ["main"]

RESULTS_DIR = REPO_ROOT / "bench-results"
"""Folder of every run's JSON, report and process logs (not committed)."""

DOCS_DIR = REPO_ROOT / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, under a minute")
    parser.add_argument("--keep-logs", action="store_true", help="keep the process logs of the run")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="only write docs/benchmarks.md again from a results file (after editing FINDINGS.md)",
    )
    arguments = parser.parse_args()

    if arguments.render is not None:
        (DOCS_DIR / "benchmarks.md").write_text(
            render_markdown(RunResults.read_json(arguments.render))
        )
        print(f"[bench] wrote {DOCS_DIR / 'benchmarks.md'} from {arguments.render}")
        return

    ensure_wrk()
    config = BenchConfig.quick() if arguments.quick else BenchConfig.full()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work_dir = RESULTS_DIR / f"run-{config.mode}-{stamp}"
    command = "make bench-quick" if arguments.quick else "make bench"

    results = run_benchmarks(config, work_dir, command, profile_dir=RESULTS_DIR)

    markdown = render_markdown(results)
    RESULTS_DIR.mkdir(exist_ok=True)
    results.write_json(RESULTS_DIR / f"{config.mode}.json")
    (RESULTS_DIR / f"{config.mode}.md").write_text(markdown)
    if not arguments.quick:
        results.write_json(DOCS_DIR / "benchmarks.json")
        (DOCS_DIR / "benchmarks.md").write_text(markdown)
        print(f"[bench] wrote {DOCS_DIR / 'benchmarks.md'} and {DOCS_DIR / 'benchmarks.json'}")
    print(f"[bench] wrote {RESULTS_DIR / (config.mode + '.md')} and .json")
    if not arguments.keep_logs and not results.failures:
        shutil.rmtree(work_dir, ignore_errors=True)
    elif results.failures:
        print(f"[bench] process logs kept in {work_dir}", file=sys.stderr)
    print(key_ratios_line(results), flush=True)


if __name__ == "__main__":
    main()
