"""The processes one benchmark run starts: its own NATS (and Redis), baselines, services.

Everything listens on 127.0.0.1 on free ports under a fresh namespace, with
environments built from scratch (nothing leaks from the caller's shell), and
``BenchSystem.close`` stops every process it started.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from portfolio_shared.testing.servers import ManagedServer, free_port, start_nats, start_redis

from bench.baselines import BASELINE_PATH, BODY_FILE_VARIABLE
from bench.procs import Child, wait_http

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["BenchSystem", "GatewayHandle", "granian_argv"]

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository, put on ``PYTHONPATH`` so granian can import the baseline apps."""

START_TIMEOUT_S = 60.0
"""Maximum wait for one process to become ready, in seconds."""

RAISED_LIMIT_CAPACITY = "1000000000"
RAISED_LIMIT_REFILL = "1000000000"
"""Token bucket capacity and refill per second that no benchmark load reaches."""


def granian_argv(target: str, *, port: int, workers: int) -> list[str]:
    """Build the command serving an ASGI app factory as the gateway serves its own.

    ``bench.baselines.serve`` uses the gateway's own serving class with one worker
    and granian's supervisor with more (see ``portfolio_gateway.serving``).
    """
    return [
        sys.executable,
        "-m",
        "bench.baselines.serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        target,
    ]


@dataclass
class GatewayHandle:
    """One running gateway replica."""

    replica: int
    url: str
    child: Child

    def wait_started(self) -> None:
        """Wait until the replica's startup probe returns 200."""
        wait_http(self.url + "/api/health/startup", timeout_s=START_TIMEOUT_S, child=self.child)


@dataclass
class BenchSystem:
    """The servers and processes of one run; use ``close()`` (or ``with``) to stop them all."""

    work_dir: Path
    workers: int = 1
    """Granian worker processes per gateway and per baseline app."""

    namespace: str = field(default_factory=lambda: f"bench{secrets.token_hex(4)}")
    admin_key: str = field(default_factory=lambda: secrets.token_hex(24))
    nats: ManagedServer | None = None
    redis: ManagedServer | None = None
    llm_base_url: str | None = None
    children: list[Child] = field(default_factory=list)
    gateways: list[GatewayHandle] = field(default_factory=list)
    services: dict[str, Child] = field(default_factory=dict)
    fake_llm: Child | None = None
    baselines: dict[str, Child] = field(default_factory=dict)
    """Baseline apps by name (``bare``, ``nats``)."""

    def __enter__(self) -> BenchSystem:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.nats = start_nats(prefer_env=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def nats_url(self) -> str:
        assert self.nats is not None, "the system is not started"
        return self.nats.url

    def base_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Build a fresh environment: interpreter basics, NATS, namespace and data dir only."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO_ROOT),
            "NATS_URL": self.nats_url,
            "NATS_NAMESPACE": self.namespace,
            "DATA_DIR": str(self.work_dir / "data"),
            "LOG_FORMAT": "json",
        }
        env.update(extra or {})
        return env

    def spawn(self, child: Child) -> Child:
        self.children.append(child.start())
        return child

    # Redis

    def ensure_redis(self) -> str:
        """Start a Redis server of this run (the bundled valkey) and return its URL."""
        if self.redis is None:
            self.redis = start_redis(prefer_env=False)
        return self.redis.url

    # Baselines

    def start_bare_baseline(self, body_file: Path) -> str:
        """Start baseline 1 and return its URL."""
        return self._start_baseline("bare", "bench.baselines.bare_app:create_app", body_file)

    def start_nats_baseline(self, body_file: Path) -> str:
        """Start baseline 2 and its trivial responder, and return the app's URL."""
        responder = self.spawn(
            Child.python_module(
                "baseline-responder",
                "bench.baselines.responder",
                self.base_env({BODY_FILE_VARIABLE: str(body_file)}),
                self.log_dir,
            )
        )
        _wait_log_line(responder, "responder ready")
        return self._start_baseline("nats", "bench.baselines.nats_app:create_app", body_file)

    def _start_baseline(self, name: str, target: str, body_file: Path) -> str:
        port = free_port()
        child = self.spawn(
            Child(
                name=f"baseline-{name}",
                argv=granian_argv(target, port=port, workers=self.workers),
                env=self.base_env({BODY_FILE_VARIABLE: str(body_file)}),
                log_path=self.log_dir / f"baseline-{name}.log",
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(url + BASELINE_PATH, timeout_s=START_TIMEOUT_S, child=child)
        self.baselines[name] = child
        return url

    def stop_child(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    # The real services

    def start_fake_provider(self) -> str:
        """Start the fake OpenAI-compatible provider and return its base URL."""
        port_file = self.work_dir / "fake-llm.url"
        port_file.unlink(missing_ok=True)
        child = self.spawn(
            Child.python_module(
                "fake-llm", "bench.fake_provider", self.base_env(), self.log_dir, str(port_file)
            )
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists() or not port_file.read_text():
            if not child.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the fake provider did not start:\n{child.log_tail()}")
            time.sleep(0.05)
        self.llm_base_url = port_file.read_text().strip()
        self.fake_llm = child
        return self.llm_base_url

    def start_service(
        self,
        kind: str,
        *,
        replica: int = 0,
        env: Mapping[str, str] | None = None,
        wrapper: list[str] | None = None,
    ) -> Child:
        """Start ``python -m portfolio_<kind>`` (content, chat or health), optionally under ``wrapper``."""
        extra: dict[str, str] = {"INSTANCE_ID": f"{kind}-{replica}"}
        if kind == "content":
            extra["TURSO_DATABASE_URL"] = f"file:{self.work_dir / 'data' / 'portfolio.db'}"
        if kind == "chat":
            if self.llm_base_url is None:
                self.start_fake_provider()
            assert self.llm_base_url is not None
            extra.update(LLM_BASE_URL=self.llm_base_url, LLM_API_KEY="bench-provider-key")
        extra.update(env or {})
        (self.work_dir / "data").mkdir(parents=True, exist_ok=True)
        child = Child.python_module(
            f"{kind}-{replica}", f"portfolio_{kind}", self.base_env(extra), self.log_dir
        )
        child.argv = [*(wrapper or []), *child.argv]
        self.spawn(child)
        self.services[child.name] = child
        return child

    def start_gateway(
        self,
        *,
        replica: int = 0,
        env: Mapping[str, str] | None = None,
        wrapper: list[str] | None = None,
        wait: bool = True,
    ) -> GatewayHandle:
        """Start a gateway replica with every rate limit raised out of reach of the load.

        ``wrapper`` is a command the gateway runs under, such as a profiler.
        With ``wait=False`` it returns at once; call ``handle.wait_started()``.
        """
        port = free_port()
        extra = {
            "INSTANCE_ID": f"gateway-{replica}",
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_WORKERS": str(self.workers),
            "ADMIN_API_KEY": self.admin_key,
            "RATE_LIMIT_CAPACITY": RAISED_LIMIT_CAPACITY,
            "RATE_LIMIT_REFILL_RATE": RAISED_LIMIT_REFILL,
            "CONTENT_RATE_LIMIT_CAPACITY": RAISED_LIMIT_CAPACITY,
            "CONTENT_RATE_LIMIT_REFILL_RATE": RAISED_LIMIT_REFILL,
        }
        extra.update(env or {})
        child = Child.python_module(
            f"gateway-{replica}", "portfolio_gateway", self.base_env(extra), self.log_dir
        )
        child.argv = [*(wrapper or []), *child.argv]
        self.spawn(child)
        url = f"http://127.0.0.1:{port}"
        handle = GatewayHandle(replica=replica, url=url, child=child)
        self.gateways.append(handle)
        if wait:
            handle.wait_started()
        return handle

    def wait_ready(self, gateway_url: str, *, parts: tuple[str, ...] = ()) -> None:
        """Wait until the gateway reports the system ready (200) with each of ``parts`` ``ok``.

        Non-critical services (chat) do not hold readiness back, so a benchmark
        that needs one names it in ``parts``.
        """
        url = gateway_url + "/api/health/ready"
        wait_http(url, timeout_s=START_TIMEOUT_S)
        deadline = time.monotonic() + START_TIMEOUT_S
        while parts:
            try:
                checks = httpx.get(url, timeout=2.0).json().get("checks", {})
            except (httpx.HTTPError, ValueError):
                checks = {}
            if all(checks.get(part) == "ok" for part in parts):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{', '.join(parts)} not ok after {START_TIMEOUT_S}s: {checks}")
            time.sleep(0.1)

    def stop_services(self) -> None:
        """Stop every gateway and service (not NATS, Redis or the fake provider)."""
        for handle in self.gateways:
            self.stop_child(handle.child)
        self.gateways.clear()
        for child in self.services.values():
            self.stop_child(child)
        self.services.clear()

    def close(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.nats is not None:
            self.nats.stop()
            self.nats = None


def _wait_log_line(child: Child, text: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if text in child.log_tail(200):
            return
        if not child.alive():
            break
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not print {text!r}:\n{child.log_tail()}")
