"""The whole system as real processes on loopback, for integration tests.

A ``Stack`` runs each service as ``python -m portfolio_<kind>`` in its own
process group with an environment built from scratch (nothing leaks from the
test runner's environment), writes each process's output to
``<data_dir>/logs/<kind>-<replica>.log``, and waits for readiness with a
deadline: a gateway is ready when ``/api/health/startup`` returns 200, another
service when its replicas reply to the NATS micro discovery ``$SRV.PING``.
``close`` sends SIGTERM to every process, SIGKILL after a deadline, and leaves
no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import nats
import nats.errors
from portfolio_shared.contract import Subjects
from portfolio_shared.devstack.processes import kill_group, spawn, stop_group
from portfolio_shared.testing.servers import free_port

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterable, Mapping

__all__ = ["SERVICE_ORDER", "ManagedProcess", "Stack", "StackOptions"]

SERVICE_ORDER = ("content", "chat", "health", "gateway")
"""Kinds a stack runs, in start order (the gateway last, so it finds its peers)."""

READY_TIMEOUT_S = 60.0
"""Maximum wait for one process to become ready (cold imports on a busy machine)."""

STOP_TIMEOUT_S = 15.0
"""Maximum wait for one process to exit after SIGTERM before it is killed."""

PING_WINDOW_S = 0.3
"""How long one ``$SRV.PING`` round collects replies."""


def run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` to completion on a private event loop in a helper thread.

    The stack's methods are synchronous but may be called from async tests whose
    loop is already running in this thread.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as error:
            result["error"] = error

    thread = threading.Thread(target=target, name="stack-helper")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


async def _count_ping_replies(nats_url: str, service_name: str) -> int:
    client = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        inbox = client.new_inbox()
        subscription = await client.subscribe(inbox)
        await client.publish(f"$SRV.PING.{service_name}", b"", reply=inbox)
        await client.flush()
        replies = 0
        deadline = asyncio.get_running_loop().time() + PING_WINDOW_S
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                reply = await subscription.next_msg(timeout=remaining)
            except nats.errors.TimeoutError:
                break
            # The server's "no responders" status message arrives with an empty body.
            if reply.data:
                replies += 1
        return replies
    finally:
        await client.close()


def count_ping_replies(nats_url: str, service_name: str) -> int:
    """Number of instances of micro service ``service_name`` that reply to ``$SRV.PING``."""
    return int(run_coroutine(_count_ping_replies(nats_url, service_name)))


def http_get(url: str, *, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; return the status and body (also for 4xx/5xx responses)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


@dataclass
class StackOptions:
    """What a stack runs and how it is configured."""

    nats_url: str
    """NATS the services talk through (a shared one, or one the test owns)."""

    data_dir: Path
    """Folder of this stack alone: SQLite file, logs, backups."""

    namespace: str = field(default_factory=lambda: f"t{secrets.token_hex(6)}")
    """``NATS_NAMESPACE`` of this stack alone."""

    replicas: Mapping[str, int] = field(default_factory=dict)
    """Replicas per kind started by ``start_all``; 1 for a kind not named, 0 to leave it out."""

    redis_url: str | None = None
    """``REDIS_URL`` for every service; ``None`` means in-process memory."""

    redis_key_prefix: str = ""
    """``REDIS_KEY_PREFIX``; only passed with a ``redis_url``."""

    llm_base_url: str | None = None
    """``LLM_BASE_URL`` of the chat service (the fake provider in tests)."""

    env: Mapping[str, str] = field(default_factory=dict)
    """Extra variables for every process, applied last."""


@dataclass
class ManagedProcess:
    """One running (or stopped) service replica."""

    kind: str
    replica: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    frozen: bool = False
    port: int | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Stack:
    """One whole system on loopback; see the module docstring."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.namespace = options.namespace
        self.nats_url = options.nats_url
        self.redis_url = options.redis_url
        self.data_dir = options.data_dir
        self.subjects = Subjects(options.namespace)
        self.admin_key = secrets.token_hex(20)
        """A 40-character ``ADMIN_API_KEY`` every gateway accepts."""
        self.llm_api_key = f"sk-test-{secrets.token_hex(16)}"
        """``LLM_API_KEY`` of the chat service (a secret tests look for in logs)."""
        self.database_url = f"file:{self.data_dir / 'portfolio.db'}"
        self._processes: dict[tuple[str, int], ManagedProcess] = {}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)

    # Addresses

    @property
    def gateway_url(self) -> str:
        """Base URL of gateway replica 0."""
        return self.gateway_url_of(0)

    def gateway_url_of(self, replica: int) -> str:
        managed = self._processes.get(("gateway", replica))
        if managed is None or managed.port is None:
            raise KeyError(f"gateway replica {replica} was never started")
        return f"http://127.0.0.1:{managed.port}"

    def gateway_urls(self) -> list[str]:
        """Base URLs of every gateway replica that is running, by replica number."""
        return [
            f"http://127.0.0.1:{managed.port}"
            for (kind, _), managed in sorted(self._processes.items())
            if kind == "gateway" and managed.running
        ]

    # Environment

    def base_env(self) -> dict[str, str]:
        """Variables every process of this stack gets, built from scratch."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(self.data_dir)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "NATS_URL": self.nats_url,
            "NATS_NAMESPACE": self.namespace,
            "DATA_DIR": str(self.data_dir),
            "TURSO_DATABASE_URL": self.database_url,
            "ENVIRONMENT": "test",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "ADMIN_API_KEY": self.admin_key,
            "LLM_API_KEY": self.llm_api_key,
            # No load balancer watches these gateways, so a drain period before
            # stopping only slows teardown; tests of draining set their own.
            "SHUTDOWN_GRACE_S": "0",
        }
        if self.redis_url is not None:
            env["REDIS_URL"] = self.redis_url
            env["REDIS_KEY_PREFIX"] = self.options.redis_key_prefix
        if self.options.llm_base_url is not None:
            env["LLM_BASE_URL"] = self.options.llm_base_url
        env.update(self.options.env)
        return env

    def env_for(
        self, kind: str, replica: int = 0, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The exact environment ``start(kind, replica=replica, env=extra)`` would use."""
        env = self.base_env()
        env["INSTANCE_ID"] = f"{kind}-{replica}"
        if kind == "gateway":
            env["GATEWAY_HOST"] = "127.0.0.1"
            env["GATEWAY_PORT"] = str(self._gateway_port(replica))
        if extra:
            env.update(extra)
        return env

    def _gateway_port(self, replica: int) -> int:
        managed = self._processes.get(("gateway", replica))
        if managed is not None and managed.port is not None:
            return managed.port
        return free_port()

    # Lifecycle

    def start_all(self) -> None:
        """Start every replica the options ask for, in parallel, and wait until all are ready."""
        launched = [
            (kind, replica)
            for kind in SERVICE_ORDER
            for replica in range(self.options.replicas.get(kind, 1))
        ]
        for kind, replica in launched:
            self._launch(kind, replica, None)
        for kind, replica in launched:
            self._wait_ready(kind, replica)

    def start(self, kind: str, *, replica: int = 0, env: dict[str, str] | None = None) -> None:
        """Start (or restart) one replica and wait until it is ready."""
        self._launch(kind, replica, env)
        self._wait_ready(kind, replica)

    def _launch(self, kind: str, replica: int, extra: Mapping[str, str] | None) -> None:
        key = (kind, replica)
        existing = self._processes.get(key)
        if existing is not None and existing.running:
            raise RuntimeError(f"{kind} replica {replica} is already running")
        env = self.env_for(kind, replica, extra)
        log_path = self.data_dir / "logs" / f"{kind}-{replica}.log"
        log_file = log_path.open("ab")
        log_file.write(f"--- start {kind} replica {replica} ---\n".encode())
        log_file.flush()
        process = spawn(
            [sys.executable, "-m", f"portfolio_{kind}"],
            env=env,
            stdout=log_file,
            cwd=self.data_dir,
        )
        port = int(env["GATEWAY_PORT"]) if kind == "gateway" else None
        if existing is not None and existing.log_file is not None:
            existing.log_file.close()
        self._processes[key] = ManagedProcess(
            kind=kind,
            replica=replica,
            log_path=log_path,
            process=process,
            log_file=log_file,
            port=port,
        )

    def _wait_ready(self, kind: str, replica: int) -> None:
        managed = self._processes[(kind, replica)]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not managed.running:
                raise RuntimeError(
                    f"{kind} replica {replica} exited with code "
                    f"{managed.process.returncode if managed.process else None} before it was "
                    f"ready; its log:\n{self.logs(kind, replica)[-4000:]}"
                )
            if self._is_ready(managed):
                return
            time.sleep(0.1)
        raise TimeoutError(
            f"{kind} replica {replica} not ready after {READY_TIMEOUT_S}s; its log:\n"
            f"{self.logs(kind, replica)[-4000:]}"
        )

    def _is_ready(self, managed: ManagedProcess) -> bool:
        if managed.kind == "gateway":
            try:
                status, _ = http_get(f"http://127.0.0.1:{managed.port}/api/health/startup")
            except OSError:
                return False
            return status == 200
        expected = sum(
            1
            for (kind, _), other in self._processes.items()
            if kind == managed.kind and other.running and not other.frozen
        )
        try:
            answered = count_ping_replies(self.nats_url, self.subjects.service_name(managed.kind))
        except (OSError, nats.errors.Error):
            return False
        return answered >= expected

    def stop(self, kind: str, *, replica: int = 0, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` and wait for the exit (SIGKILL after a deadline); return the exit code."""
        managed = self._processes[(kind, replica)]
        if managed.process is None:
            return None
        code = stop_group(managed.process, timeout_s=STOP_TIMEOUT_S, sig=sig)
        managed.frozen = False
        return code

    def kill(self, kind: str, *, replica: int = 0) -> None:
        """SIGKILL one replica's whole process group, as a crash would."""
        managed = self._processes[(kind, replica)]
        if managed.process is not None:
            kill_group(managed.process)
        managed.frozen = False

    def freeze(self, kind: str, replica: int = 0) -> None:
        """SIGSTOP one replica's process group: it keeps its connections but processes nothing."""
        managed = self._processes[(kind, replica)]
        assert managed.process is not None
        _signal_group(managed.process, signal.SIGSTOP)
        managed.frozen = True

    def thaw(self, kind: str, replica: int = 0) -> None:
        """SIGCONT a frozen replica."""
        managed = self._processes[(kind, replica)]
        assert managed.process is not None
        _signal_group(managed.process, signal.SIGCONT)
        managed.frozen = False

    def returncode(self, kind: str, replica: int = 0) -> int | None:
        """Exit code of a replica, ``None`` while it runs."""
        process = self._processes[(kind, replica)].process
        return None if process is None else process.poll()

    def pid(self, kind: str, replica: int = 0) -> int:
        """Process id of one running replica (its main process)."""
        process = self._processes[(kind, replica)].process
        assert process is not None, f"{kind} replica {replica} was never started"
        return process.pid

    def pids(self) -> list[int]:
        """Process ids of every replica this stack ever started (group leaders)."""
        return [m.process.pid for m in self._processes.values() if m.process is not None]

    def close(self) -> None:
        """Stop every process (SIGTERM to all at once, SIGKILL after a deadline)."""
        running = [m for m in self._processes.values() if m.process is not None and m.running]
        for managed in running:
            assert managed.process is not None
            with contextlib.suppress(ProcessLookupError):
                managed.process.send_signal(signal.SIGTERM)
                _signal_group(managed.process, signal.SIGCONT)
        for managed in self._processes.values():
            if managed.process is not None:
                stop_group(managed.process, timeout_s=STOP_TIMEOUT_S)
            if managed.log_file is not None:
                managed.log_file.close()
                managed.log_file = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Logs

    def logs(self, kind: str, replica: int = 0) -> str:
        """Everything one replica wrote so far (all its runs, each after a ``--- start`` line)."""
        path = self.data_dir / "logs" / f"{kind}-{replica}.log"
        if not path.exists():
            return ""
        return path.read_text(encoding="utf-8", errors="replace")

    def log_records(self, kind: str, replica: int = 0) -> list[dict[str, Any]]:
        """The JSON log lines of one replica, parsed; lines that are not JSON are left out."""
        records = []
        for line in self.logs(kind, replica).splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def log_files(self) -> list[Path]:
        return sorted((self.data_dir / "logs").glob("*.log"))

    def grep_logs(self, needles: str | Iterable[str]) -> list[str]:
        """Lines of any process's log containing any of ``needles``, as ``file: line``."""
        patterns = [needles] if isinstance(needles, str) else list(needles)
        found = []
        for path in self.log_files():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if any(pattern in line for pattern in patterns):
                    found.append(f"{path.name}: {line}")
        return found


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
