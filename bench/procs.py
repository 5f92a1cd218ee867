"""Child processes of a benchmark run: start, wait for readiness, measure memory, stop.

Every process runs in its own process group with its output in a log file, so
stopping it also stops the workers it forked (granian) and nothing outlives the
run. Resident memory is read from ``/proc`` for the whole process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Child", "process_tree_cpu_s", "process_tree_rss_mb", "wait_http"]

STOP_DEADLINE_S = 10.0
"""How long a child gets to exit after SIGTERM before it is killed, in seconds."""

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """One started process and the file its output goes to."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def python_module(
        cls, name: str, module: str, env: dict[str, str], log_dir: Path, *args: str
    ) -> Child:
        """Build a child running ``python -m module`` with this interpreter."""
        return cls(
            name=name,
            argv=[sys.executable, "-m", module, *args],
            env=env,
            log_path=log_dir / f"{name}.log",
        )

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_mb(self) -> float:
        """Resident memory of this process and every descendant, in MiB."""
        return process_tree_rss_mb(self.pid)

    def largest_rss_mb(self) -> float:
        """Resident memory of the largest single process of this tree, in MiB."""
        return max((_rss_mb(member) for member in _descendants(self.pid)), default=0.0)

    def process_count(self) -> int:
        return len(_descendants(self.pid))

    def cpu_s(self) -> float:
        """CPU time (user + system) used so far by this process and every descendant, in seconds."""
        return process_tree_cpu_s(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it after ``STOP_DEADLINE_S``.

        The group is signalled even when its leader has already exited, because
        a wrapper (py-spy) can exit first and leave the program it ran behind.
        """
        if self.process is None:
            return
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + STOP_DEADLINE_S
        while _group_alive(group) and time.monotonic() < deadline:
            if self.process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.1)
            else:
                time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()


def _group_alive(group: int) -> bool:
    """Return whether any process of the group is alive (zombies count as gone)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # Fields after the name: state, ppid, pgrp.
        if fields is not None and int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def _descendants(pid: int) -> list[int]:
    children = _children_of()
    found = []
    pending = [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def process_tree_cpu_s(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its live descendants, in seconds."""
    total_ticks = 0
    for member in _descendants(pid):
        fields = _stat_fields(member)
        if fields is not None:
            # utime and stime are the 14th and 15th fields of the whole line.
            total_ticks += int(fields[11]) + int(fields[12])
    return total_ticks / _TICKS_PER_S


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MiB (0 when it is gone)."""
    return sum(_rss_mb(member) for member in _descendants(pid))


def _rss_mb(pid: int) -> float:
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0.0
    return int(statm[1]) * _PAGE_KB / 1024


def wait_http(url: str, *, timeout_s: float, child: Child | None = None) -> None:
    """Poll ``url`` until it returns 2xx, or raise with the child's log tail."""
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{child.name} exited while starting:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback URL built here
                if 200 <= response.status < 300:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(0.05)
    tail = f"\n{child.log_tail()}" if child is not None else ""
    raise TimeoutError(f"{url} not ready after {timeout_s}s ({last_error}){tail}")
