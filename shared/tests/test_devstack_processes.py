"""Process groups of the dev stack: stopped as a tree, never outliving their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from portfolio_shared.devstack.processes import group_alive, kill_group, spawn, stop_group

FORKING_CHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(grandchild.pid, flush=True)
    time.sleep(600)
    """
)

IGNORES_SIGTERM = textwrap.dedent(
    """
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(600)
    """
)

SUPERVISOR = textwrap.dedent(
    """
    import os, sys, time
    from portfolio_shared.devstack.processes import spawn
    child = spawn([sys.executable, "-c", "import time; time.sleep(600)"], env=dict(os.environ))
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still accepts signal 0, but it has exited.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def _wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_spawned_process_leads_its_own_group() -> None:
    process = spawn([sys.executable, "-c", "import time; time.sleep(600)"], env=dict(os.environ))
    try:
        assert os.getpgid(process.pid) == process.pid
    finally:
        kill_group(process)


def test_stop_group_leaves_no_grandchild() -> None:
    process = spawn(
        [sys.executable, "-c", FORKING_CHILD], env=dict(os.environ), stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    grandchild = int(process.stdout.readline())

    stop_group(process, timeout_s=5)

    assert _wait_until(lambda: not _pid_alive(grandchild))


def test_stop_group_sigterm_exit_code() -> None:
    process = spawn([sys.executable, "-c", "import time; time.sleep(600)"], env=dict(os.environ))

    code = stop_group(process, timeout_s=5)

    assert code == -signal.SIGTERM


def test_stop_group_kills_a_process_that_ignores_sigterm() -> None:
    process = spawn(
        [sys.executable, "-c", IGNORES_SIGTERM], env=dict(os.environ), stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    process.stdout.readline()

    code = stop_group(process, timeout_s=0.5)

    assert code == -signal.SIGKILL


def test_stop_group_ends_a_frozen_process() -> None:
    process = spawn([sys.executable, "-c", "import time; time.sleep(600)"], env=dict(os.environ))
    os.killpg(process.pid, signal.SIGSTOP)

    stop_group(process, timeout_s=5)

    assert not group_alive(process.pid)


def test_children_die_when_their_supervisor_is_killed() -> None:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, env=dict(os.environ)
    )
    assert supervisor.stdout is not None
    child = int(supervisor.stdout.readline())

    supervisor.kill()
    supervisor.wait()

    assert _wait_until(lambda: not _pid_alive(child))
