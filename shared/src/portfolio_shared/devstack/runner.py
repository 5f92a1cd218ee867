"""Supervisor that runs the whole system in the foreground for development.

``DevStack.run`` starts, as separate processes: a ``nats-server`` with JetStream
on a free 127.0.0.1 port (only when ``NATS_URL`` is unset, its store under
``DATA_DIR/nats``), then the content, chat, health and gateway services. Each
line a child writes is printed with the child's name in front. Once the gateway's
startup probe returns 200 the gateway URL is printed. On SIGINT or SIGTERM every
process it started is stopped (services first, NATS last) and ``run`` returns.
A child that exits on its own is reported and not restarted, so a developer can
watch readiness turn to 503 when a service is gone.
"""

from __future__ import annotations

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
from typing import IO, TYPE_CHECKING

from portfolio_shared.devstack.processes import spawn, stop_group
from portfolio_shared.testing.servers import bundled_nats_server_path, free_port, wait_for_port

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType

__all__ = ["SERVICE_KINDS_IN_START_ORDER", "DevStack", "dev_environment"]

SERVICE_KINDS_IN_START_ORDER = ("content", "chat", "health", "gateway")
"""Services the dev stack runs, each as ``python -m portfolio_<kind>``."""

STARTUP_TIMEOUT_S = 90.0
"""Maximum wait for the gateway's startup probe before the stack gives up."""

STOP_TIMEOUT_S = 20.0
"""Maximum wait for one process to exit after SIGTERM before it is killed."""


def dev_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Return the services' environment with development defaults filled in.

    Also returns notes to print once (a generated admin key, say). Variables the
    caller set are kept as they are.
    """
    env = dict(environ)
    notes: list[str] = []
    data_dir = Path(env.get("DATA_DIR") or "./data").resolve()
    env["DATA_DIR"] = str(data_dir)
    env.setdefault("TURSO_DATABASE_URL", f"file:{data_dir / 'portfolio.db'}")
    env.setdefault("GATEWAY_HOST", "127.0.0.1")
    env.setdefault("GATEWAY_PORT", "8000")
    env.setdefault("ENVIRONMENT", "development")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("ADMIN_API_KEY") and not env.get("ADMIN_API_KEYS"):
        env["ADMIN_API_KEY"] = secrets.token_urlsafe(32)
        notes.append(
            f"ADMIN_API_KEY was unset: this run accepts the development key {env['ADMIN_API_KEY']}"
        )
    return env, notes


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    reader: threading.Thread
    reported_exit: bool = False


@dataclass
class DevStack:
    """Supervisor of NATS (when needed) and the four services, until a stop signal arrives."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    _children: list[_Child] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _print_lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, name: str, line: str) -> None:
        """Print one line with ``name`` in front, whole even when children write at once."""
        with self._print_lock:
            self.out.write(f"{name:>8} | {line}\n")
            self.out.flush()

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start everything, wait for a stop signal, stop everything; return an exit code."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            return self._run()
        finally:
            self._stop_all()

    def _run(self) -> int:
        env, notes = dev_environment(self.environ)
        data_dir = Path(env["DATA_DIR"])
        data_dir.mkdir(parents=True, exist_ok=True)
        for note in notes:
            self.say("devstack", note)

        if not env.get("NATS_URL"):
            env["NATS_URL"] = self._start_nats(data_dir / "nats")
        if not env.get("REDIS_URL"):
            self.say("devstack", "REDIS_URL is unset: cache and rate limits stay in memory")

        for kind in SERVICE_KINDS_IN_START_ORDER:
            self._start(kind, [sys.executable, "-m", f"portfolio_{kind}"], env)

        gateway_url = f"http://{env['GATEWAY_HOST']}:{env['GATEWAY_PORT']}"
        if not self._wait_for_gateway(gateway_url):
            return 1
        self.say("devstack", f"gateway ready at {gateway_url} (Ctrl-C stops everything)")

        while not self._stop.wait(0.5):
            self._report_exits()
        self.say("devstack", "stopping")
        return 0

    def _start_nats(self, store: Path) -> str:
        store.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [
            bundled_nats_server_path(),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-js",
            "-sd",
            str(store),
        ]
        self._start("nats", argv, dict(self.environ))
        wait_for_port("127.0.0.1", port, timeout_s=15)
        url = f"nats://127.0.0.1:{port}"
        self.say("devstack", f"NATS_URL is unset: started nats-server with JetStream at {url}")
        return url

    def _start(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        process = spawn(argv, env=env, stdout=subprocess.PIPE)
        reader = threading.Thread(
            target=self._relay, args=(name, process), name=f"relay-{name}", daemon=True
        )
        reader.start()
        self._children.append(_Child(name, process, reader))
        self.say("devstack", f"started {name} (pid {process.pid})")

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            self.say(name, raw.decode("utf-8", errors="replace").rstrip("\n"))

    def _wait_for_gateway(self, url: str) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._report_exits()
            if _startup_probe_ok(f"{url}/api/health/startup"):
                return True
            time.sleep(0.2)
        if not self._stop.is_set():
            self.say("devstack", f"gateway not started after {STARTUP_TIMEOUT_S}s at {url}")
            return False
        return True

    def _report_exits(self) -> None:
        for child in self._children:
            code = child.process.poll()
            if code is not None and not child.reported_exit:
                child.reported_exit = True
                self.say("devstack", f"{child.name} exited with code {code}; not restarted")

    def _stop_all(self) -> None:
        # Services before NATS, so they can drain their connections on the way out.
        services = [child for child in self._children if child.name != "nats"]
        brokers = [child for child in self._children if child.name == "nats"]
        for child in services:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in [*services, *brokers]:
            code = stop_group(child.process, timeout_s=STOP_TIMEOUT_S)
            child.reader.join(timeout=2)
            if not child.reported_exit:
                self.say("devstack", f"{child.name} stopped (exit code {code})")
        self._children.clear()


def _startup_probe_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False
