"""``make run``'s supervisor (``python -m portfolio_shared.devstack``) as a developer uses it.

Each test runs it as a subprocess with ``NATS_URL`` unset, so it starts its own
bundled ``nats-server``, and a free gateway port.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from portfolio_shared.testing.servers import free_port
from stack import http_get

READY_DEADLINE_S = 90.0

RunDevStack = Callable[..., "DevStackProcess"]


class DevStackProcess:
    """The supervisor process with its output collected line by line."""

    def __init__(self, data_dir: Path, port: int) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(data_dir)),
            "LANG": "C.UTF-8",
            "DATA_DIR": str(data_dir),
            "GATEWAY_PORT": str(port),
            "NATS_NAMESPACE": f"dev{os.getpid()}x{port}",
            "LOG_FORMAT": "json",
        }
        self.url = f"http://127.0.0.1:{port}"
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portfolio_shared.devstack"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.output.append(line)
            self.lines.put(line)

    def wait_for_line(self, needle: str, timeout_s: float = READY_DEADLINE_S) -> str:
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r}; output:\n" + "\n".join(self.output[-80:]))

    def descendants(self) -> set[int]:
        return _descendants(self.process.pid)

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _parent_pids() -> dict[int, int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    return parents


def _descendants(root: int) -> set[int]:
    parents = _parent_pids()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _alive(pids: set[int]) -> set[int]:
    running = set(_parent_pids())
    return pids & running


def _wait_until_gone(pids: set[int], timeout_s: float = 15.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def _get_until(url: str, status: int, timeout_s: float = 30.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout_s
    result = http_get(url)
    while result[0] != status and time.monotonic() < deadline:
        time.sleep(0.2)
        result = http_get(url)
    return result


@pytest.fixture
def run_devstack(tmp_path: Path) -> Iterator[RunDevStack]:
    started: list[DevStackProcess] = []

    def run(port: int | None = None) -> DevStackProcess:
        devstack = DevStackProcess(tmp_path / "data", port or free_port())
        started.append(devstack)
        return devstack

    yield run
    for devstack in started:
        devstack.cleanup()


def test_devstack_serves_content_and_stops_cleanly(run_devstack: RunDevStack) -> None:
    devstack = run_devstack()
    devstack.wait_for_line("gateway ready at")

    bundle_status, bundle = http_get(f"{devstack.url}/api/v1/content/bundle")
    ready_status, ready = _get_until(f"{devstack.url}/api/health/ready", 200)
    children = devstack.descendants()
    code = devstack.terminate()

    assert bundle_status == 200
    assert json.loads(bundle)["data"]
    assert ready_status == 200
    assert json.loads(ready)["status"] == "ready"
    assert len(children) >= 5
    assert code == 0
    assert _wait_until_gone(children) == set()


def test_devstack_runs_again_right_after_a_stop(run_devstack: RunDevStack) -> None:
    port = free_port()
    first = run_devstack(port)
    first.wait_for_line("gateway ready at")
    first.terminate()

    second = run_devstack(port)
    second.wait_for_line("gateway ready at")
    status, _ = _get_until(f"{second.url}/api/health/ready", 200)

    assert status == 200


def test_devstack_prints_a_generated_admin_key(run_devstack: RunDevStack) -> None:
    devstack = run_devstack()

    line = devstack.wait_for_line("ADMIN_API_KEY was unset")

    assert len(line.rsplit(" ", 1)[1]) >= 32


def test_devstack_killed_leaves_no_orphans(run_devstack: RunDevStack) -> None:
    devstack = run_devstack()
    devstack.wait_for_line("gateway ready at")
    children = devstack.descendants()

    devstack.terminate(signal.SIGKILL)

    assert _wait_until_gone(children) == set()
