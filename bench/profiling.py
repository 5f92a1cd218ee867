"""Sampling profiles of a gateway replica under load, taken with py-spy.

py-spy (from PyPI, run through ``uv tool run`` so nothing is added to the
project's environment) starts the replica itself, with its granian workers
followed as subprocesses, and samples it while wrk drives one path. SIGINT
makes py-spy write its collapsed stacks. The summary keeps the functions with
the most samples, on the stack (inclusive) and at the top of it (self).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.loadgen import LoadSpec, run_load

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from bench.procs import Child
    from bench.system import BenchSystem

__all__ = ["Profile", "profile_path", "py_spy_wrapper", "summarise_raw"]

SAMPLE_RATE_HZ = 200
"""Samples per second py-spy takes of each process."""

TOP = 25
"""Functions listed in each ranking of a summary."""

WRITE_DEADLINE_S = 20.0
"""Maximum wait for py-spy to write its output after SIGINT, in seconds."""


@dataclass
class Profile:
    """The summary of one profile: the busiest functions, in percent of samples."""

    label: str
    path: str
    samples: int
    inclusive: list[tuple[str, float]] = field(default_factory=list)
    self_time: list[tuple[str, float]] = field(default_factory=list)
    raw_file: str = ""


def py_spy_wrapper(output: Path) -> list[str]:
    """Return the command prefix that runs a program under ``py-spy record``.

    py-spy is fetched here, with this process's environment (registry access,
    certificates), so the wrapped command can run ``--offline`` in the clean
    environment of a benchmark child.
    """
    uv = os.environ.get("BENCH_UV") or shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is missing: set BENCH_UV or put uv on PATH to run py-spy")
    subprocess.run(
        [uv, "tool", "run", "--from", "py-spy", "py-spy", "--version"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return [
        uv,
        "tool",
        "run",
        "--offline",
        "--from",
        "py-spy",
        "py-spy",
        "record",
        "--subprocesses",
        "--nonblocking",
        "--nolineno",
        "--format",
        "raw",
        "--rate",
        str(SAMPLE_RATE_HZ),
        "--output",
        str(output),
        "--",
    ]


NO_PYTHON_FRAME = "(no Python frame: native code, e.g. granian's Rust, or idle)"
"""Name given to samples whose stack contains no Python frame."""

IMPORTING = "_find_and_load"
"""Frame on the stack of every sample taken while a module is imported (start-up)."""

PLUMBING = (
    "<frozen ",
    "runpy",
    "multiprocessing/",
    "granian/",
    "threading.py",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "portfolio_gateway/__main__.py",
)
"""Frames left out of the inclusive ranking: process start-up and event-loop plumbing
that is on almost every stack and tells nothing about where a request spends time."""


def _split(line: str) -> tuple[str, list[str], int] | None:
    """Split a collapsed-stack line into its innermost process, its frames and its count."""
    stack, _, count_text = line.rpartition(" ")
    if not stack or not count_text.isdigit():
        return None
    elements = stack.split(";")
    processes = [element for element in elements if element.startswith("process ")]
    frames = [element for element in elements if not element.startswith("process ")]
    return (processes[-1] if processes else "?"), frames, int(count_text)


def summarise_raw(text: str) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """Rank the busiest process's functions by inclusive and by self samples (percent).

    With ``--subprocesses`` the stacks of a granian server contain the
    supervisor and each worker. The busiest process (most samples in Python
    code) is the worker serving the load, so only its samples are counted. Samples taken
    while a module was being imported (start-up, not requests) are left out.
    """
    parsed = [
        entry
        for entry in map(_split, text.splitlines())
        if entry is not None and not any(IMPORTING in frame for frame in entry[1])
    ]
    busy: Counter[str] = Counter()
    for process, frames, count in parsed:
        if frames:
            busy[process] += count
    if not busy:
        return 0, [], []
    worker = busy.most_common(1)[0][0]

    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for process, frames, count in parsed:
        if process != worker:
            continue
        total += count
        if not frames:
            self_time[NO_PYTHON_FRAME] += count
            continue
        for frame in set(frames):
            if not any(marker in frame for marker in PLUMBING):
                inclusive[frame] += count
        self_time[frames[-1]] += count

    def top(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / total, 1)) for frame, n in counter.most_common(TOP)]

    return total, top(inclusive), top(self_time)


def _slug(text: str) -> str:
    return "".join(char if char.isalnum() else "-" for char in text.lower()).strip("-")


def _stop_and_collect(child: Child, output: Path, *, label: str, path: str) -> Profile:
    """SIGINT the py-spy wrapper so it writes its output, then summarise that output."""
    os.kill(child.pid, signal.SIGINT)
    deadline = time.monotonic() + WRITE_DEADLINE_S
    while child.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    child.stop()
    if not output.exists():
        raise RuntimeError(f"py-spy wrote no profile for {label}:\n{child.log_tail()}")
    samples, inclusive, self_time = summarise_raw(output.read_text(errors="replace"))
    return Profile(
        label=label,
        path=path,
        samples=samples,
        inclusive=inclusive,
        self_time=self_time,
        raw_file=str(output),
    )


def profile_path(
    system: BenchSystem,
    *,
    label: str,
    path: str,
    duration_s: float,
    connections: int,
    output_dir: Path,
    env: Mapping[str, str] | None = None,
    content_too: bool = False,
    paths: tuple[str, ...] = (),
) -> list[Profile]:
    """Load ``path`` on a profiled gateway replica for ``duration_s`` and summarise its profile.

    With ``paths`` the load rotates over them instead, one per request.

    With ``content_too`` the content service is profiled under the same load:
    the running replica ``content-0`` is swapped for a profiled one for the
    duration, then started again. The collapsed stacks stay in ``output_dir``.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    gateway_output = output_dir / f"profile-{_slug(label)}-gateway.raw"
    content_output = output_dir / f"profile-{_slug(label)}-content.raw"
    gateway_output.unlink(missing_ok=True)
    content_output.unlink(missing_ok=True)

    content: Child | None = None
    if content_too:
        system.stop_child(system.services.pop("content-0"))
        content = system.start_service("content", replica=8, wrapper=py_spy_wrapper(content_output))
    handle = system.start_gateway(replica=8, env=env, wrapper=py_spy_wrapper(gateway_output))
    profiles = []
    try:
        system.wait_ready(handle.url)
        spec = LoadSpec(handle.url + path, paths=paths)
        run_load(spec, duration_s=1, connections=connections)
        run_load(spec, duration_s=duration_s, connections=connections)
        profiles.append(
            _stop_and_collect(handle.child, gateway_output, label=f"{label}, gateway", path=path)
        )
        if content is not None:
            profiles.append(
                _stop_and_collect(content, content_output, label=f"{label}, content", path=path)
            )
    finally:
        system.stop_child(handle.child)
        system.gateways.remove(handle)
        if content is not None:
            system.stop_child(content)
            system.services.pop(content.name, None)
            system.start_service("content")
    return profiles
