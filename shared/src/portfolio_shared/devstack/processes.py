"""Child processes that can be signalled as a tree and never outlive their parent.

``spawn`` starts a command as the leader of a new session, so the command and
everything it forks (granian's workers, say) form one process group that
``stop_group`` and ``kill_group`` reach at once. On Linux the child also sets
``PR_SET_PDEATHSIG``, so the kernel sends it SIGTERM when the thread that
spawned it exits, so a supervisor killed with SIGKILL leaves no orphans behind.
``PR_SET_PDEATHSIG`` follows the spawning *thread*: spawn from a thread that
lives as long as the children.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["group_alive", "kill_group", "spawn", "stop_group"]

PR_SET_PDEATHSIG = 1
"""``prctl`` option that delivers a signal to this process when its parent thread exits."""


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    prctl: Callable[[int, int], int] = libc.prctl
    return prctl


# Loaded before any fork: the child must not load libraries between fork and exec.
_PRCTL = _load_prctl()


def _child_setup(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have exited between fork and prctl, so no signal would arrive.
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: IO[bytes] | int | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of its own process group, stderr merged into stdout."""
    return subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_child_setup(os.getpid()),
    )


def group_alive(pgid: int) -> bool:
    """Return whether any process of group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole group of ``process`` and reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_group(
    process: subprocess.Popen[bytes], *, timeout_s: float, sig: int = signal.SIGTERM
) -> int:
    """Send ``sig`` to the group leader, wait up to ``timeout_s``, then SIGKILL the group.

    Only the leader gets ``sig``, as a container's PID 1 would, so a server that
    manages workers (granian) shuts them down in its own order. Stragglers left
    in the group once the leader exits are killed. Returns the leader's exit code.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
            # A frozen process only acts on the signal once it runs again.
            os.killpg(process.pid, signal.SIGCONT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(process)
    deadline = time.monotonic() + 2.0
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode
