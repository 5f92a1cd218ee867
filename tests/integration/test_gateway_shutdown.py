"""Gateway shutdown as behind a load balancer: on SIGTERM the gateway first reports
not-ready while it keeps serving, then stops accepting, finishes in-flight requests
and exits 0, with one worker in the gateway process or with worker processes. Also:
one worker runs in the gateway process, and each of several workers reports metrics
under its own instance."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from portfolio_shared.testing.fake_llm import FakeLlm, FakeReply
from portfolio_shared.testing.servers import free_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from stack import Stack

    MakeStack = Callable[..., Stack]

GRACE_S = 5.0
"""``SHUTDOWN_GRACE_S`` of the stopped gateway: long enough to observe, short enough to wait."""

POLL_DEADLINE_S = 20.0
"""Safety-net deadline of each wait for a state change (the test does not time anything)."""

SUCCESSES_AFTER_NOT_READY = 3
"""Requests that must succeed after readiness turned 503, before the load stops."""


@dataclass
class ContentLoad:
    """A thread reading content through one gateway until stopped; records every outcome."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    successes: int = 0
    failures: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=POLL_DEADLINE_S)

    def _run(self) -> None:
        # A new connection per request, as a load balancer opening connections would.
        while not self.stop.is_set():
            try:
                response = httpx.get(self.url + "/api/v1/content", timeout=10.0)
            except httpx.HTTPError as error:
                self.failures.append(f"{type(error).__name__}: {error}")
                continue
            if response.status_code == 200:
                self.successes += 1
            else:
                self.failures.append(f"HTTP {response.status_code}")


def readiness_status(url: str) -> int | None:
    try:
        return httpx.get(url + "/api/health/ready", timeout=5.0).status_code
    except httpx.HTTPError:
        return None


def wait_until(condition: Callable[[], bool], description: str) -> None:
    deadline = time.monotonic() + POLL_DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {description}"
        time.sleep(0.05)


def accepts_connections(url: str) -> bool:
    try:
        httpx.get(url + "/api/health/live", timeout=2.0)
    except httpx.ConnectError:
        return False
    except httpx.HTTPError:
        return True
    return True


@pytest.mark.parametrize("workers", ["1", "2"], ids=["in-process", "two-worker-processes"])
def test_sigterm_drains_before_exit(make_stack: MakeStack, fake_llm: FakeLlm, workers: str) -> None:
    stack = make_stack(
        env={
            "SHUTDOWN_GRACE_S": str(GRACE_S),
            "RATE_LIMITING": "false",
            "GATEWAY_WORKERS": workers,
        }
    )
    url = stack.gateway_url
    gate = threading.Event()
    fake_llm.default = FakeReply.reply_text("An answer that is still streaming", gate=gate)
    wait_until(lambda: readiness_status(url) == 200, "the gateway is ready")
    load = ContentLoad(url)
    load.start()
    wait_until(lambda: load.successes > 0, "the load is served")

    exit_codes: list[int | None] = []
    stopper = threading.Thread(target=lambda: exit_codes.append(stack.stop("gateway")))
    stopper.start()
    wait_until(lambda: readiness_status(url) == 503, "readiness reports 503")
    served_when_not_ready = load.successes
    wait_until(
        lambda: load.successes >= served_when_not_ready + SUCCESSES_AFTER_NOT_READY,
        "requests are served while not ready",
    )
    load.finish()

    with httpx.stream(
        "POST",
        url + "/api/v1/chat",
        json={"message": "Stream please", "visitorId": "draining-visitor"},
        headers={"Accept": "text/event-stream"},
        timeout=30.0,
    ) as response:
        lines = response.iter_lines()
        first_event = next(lines)
        wait_until(lambda: not accepts_connections(url), "the gateway stops accepting")
        gate.set()
        rest = list(lines)
    stopper.join(timeout=POLL_DEADLINE_S)

    assert load.failures == []
    assert first_event == "event: token"
    assert "event: done" in rest
    assert exit_codes == [0]


def child_pids(pid: int) -> list[int]:
    """Return the process ids of the direct children of ``pid`` (Linux ``/proc``)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def test_one_worker_serves_in_the_gateway_process(make_stack: MakeStack) -> None:
    stack = make_stack(env={"GATEWAY_WORKERS": "1", "SHUTDOWN_GRACE_S": "0"})

    response = httpx.get(stack.gateway_url + "/api/v1/content", timeout=5.0)

    assert response.status_code == 200
    assert child_pids(stack.pid("gateway")) == []


def test_workers_have_distinct_instances(make_stack: MakeStack) -> None:
    stack = make_stack(env={"GATEWAY_WORKERS": "2", "SHUTDOWN_GRACE_S": "0"})
    instances: set[str] = set()

    def both_workers_seen() -> bool:
        body = httpx.get(stack.gateway_url + "/api/metrics", timeout=5.0).text
        instances.update(re.findall(r'service="gateway",instance="([^"]+)"', body))
        instances.update(re.findall(r'instance="([^"]+)",service="gateway"', body))
        return len(instances) >= 2

    # Each request reaches one worker, so both show up after a few scrapes.
    wait_until(both_workers_seen, "both workers answered a scrape")

    assert instances == {"gateway-0-w1", "gateway-0-w2"}


def test_sigterm_during_startup_exits_cleanly(tmp_path: Path) -> None:
    # NATS on a port nothing listens on, so the worker stays in its lifespan startup.
    env = {
        **os.environ,
        "NATS_URL": f"nats://127.0.0.1:{free_port()}",
        "GATEWAY_PORT": str(free_port()),
        "ADMIN_API_KEY": "k" * 40,
        "SHUTDOWN_GRACE_S": "1",
        "SHUTDOWN_TIMEOUT_S": "1",
        "DATA_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    log_path = tmp_path / "gateway.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "portfolio_gateway"], env=env, stdout=log, stderr=log
        )
    try:
        wait_until(lambda: "nats connection error" in log_path.read_text(), "startup began")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=POLL_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()

    assert code >= 0, f"killed by signal {-code}"
    assert code in (0, 1)
