"""Rolling restart under steady load: two replicas of every service, restarted one at a time.

Load threads send uncached admin content reads (content service), chat turns
(chat service, fake provider) and readiness checks (health service) through
the gateways in rotation, the way a load balancer would. Each replica gets
SIGTERM while requests are in flight, must exit 0, and is started again before
the next one goes. The rotation is kept by a load balancer's health check:
a gateway is in it while ``/api/health/ready`` responds 200, so a gateway that
got SIGTERM leaves it during its drain period, and comes back once it is
ready again. No request may fail.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from portfolio_shared.testing.fake_llm import FakeLlm, FakeReply

if TYPE_CHECKING:
    from collections.abc import Callable

    from stack import Stack

    MakeStack = Callable[..., Stack]

pytestmark = pytest.mark.slow

LOAD_THREADS = 6
"""Concurrent load clients."""

REQUESTS_BETWEEN_RESTARTS = 60
"""Requests that must complete after a replica is back before the next restart."""

REQUEST_TIMEOUT_S = 30.0

READY_PATH = "/api/health/ready"

DRAINING = b'"shutdown":"error"'
"""Part of the readiness body of a gateway that got SIGTERM and drains before it stops."""

HEALTH_CHECK_INTERVAL_S = 0.25
"""Pause between two rounds of the load balancer's readiness checks, in seconds."""

DRAIN_S = 3.0
"""``SHUTDOWN_GRACE_S`` of the gateways: several health check rounds, as a deployment sets
it above the load balancer's check interval."""

HEALTH_CHECK_TIMEOUT_S = 2.0
"""Deadline of one readiness check, in seconds; a gateway that misses it leaves the rotation."""


@dataclass
class Load:
    """Steady load over the gateways in rotation; records every failed request."""

    stack: Stack
    gateways: list[str]
    """Every gateway behind the load balancer; ``rotation`` contains the ready ones among them."""

    rotation: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    completed: int = 0
    stage: str = "warm-up"
    """The replica being restarted, named in each failure."""

    failures: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.rotation = list(self.gateways)
        checker = threading.Thread(target=self._check_health, daemon=True)
        checker.start()
        self.threads.append(checker)
        for number in range(LOAD_THREADS):
            thread = threading.Thread(target=self._run, args=(number,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def wait_for_more(self, count: int, timeout_s: float = 60.0) -> None:
        target = self.completed + count
        deadline = time.monotonic() + timeout_s
        while self.completed < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.completed >= target, f"load stalled at {self.completed} requests"

    def _check_health(self) -> None:
        """Keep ``rotation`` to the gateways whose readiness probe responds 200."""
        while not self.stop.is_set():
            ready = [url for url in self.gateways if _is_ready(url)]
            # With no gateway ready, a load balancer keeps sending to the last known ones.
            if ready:
                with self.lock:
                    self.rotation = ready
            self.stop.wait(HEALTH_CHECK_INTERVAL_S)

    def _run(self, number: int) -> None:
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            with self.lock:
                base = self.rotation[(number + sequence) % len(self.rotation)]
            request = self._request(base, number, sequence)
            outcome = self._send(request)
            with self.lock:
                self.completed += 1
                if outcome is not None:
                    self.failures.append(
                        f"[{self.stage}] {request.get_method()} {request.full_url}: {outcome}"
                    )

    def _request(self, base: str, number: int, sequence: int) -> urllib.request.Request:
        kind = sequence % 3
        if kind == 0:
            return urllib.request.Request(  # noqa: S310 - loopback gateway URL
                f"{base}/api/v1/admin/content", headers={"X-Admin-Key": self.stack.admin_key}
            )
        if kind == 1:
            body = {"message": "What have you built?", "visitorId": f"rolling-{number}"}
            return urllib.request.Request(  # noqa: S310 - loopback gateway URL
                f"{base}/api/v1/chat",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
        return urllib.request.Request(f"{base}{READY_PATH}")  # noqa: S310

    def _send(self, request: urllib.request.Request) -> str | None:
        """Send one request; return why it failed, or ``None``."""
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
                response.read()
                return None
        except urllib.error.HTTPError as error:
            body = error.read()
            if error.code == 503 and request.full_url.endswith(READY_PATH) and DRAINING in body:
                # A draining gateway reports not-ready, which is the response a load balancer needs.
                return None
            return f"HTTP {error.code} {body[:300]!r}"
        except OSError as error:
            return f"{type(error).__name__}: {error}"


def _is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(  # noqa: S310 - loopback gateway URL
            f"{url}{READY_PATH}", timeout=HEALTH_CHECK_TIMEOUT_S
        ) as response:
            response.read()
            return bool(response.status == 200)
    except OSError:
        return False


def test_rolling_restart_loses_no_request(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    fake_llm.default = FakeReply.reply_text("I built a portfolio backend.")
    stack = make_stack(
        replicas={"content": 2, "chat": 2, "health": 2, "gateway": 2},
        env={"RATE_LIMITING": "false", "SHUTDOWN_GRACE_S": str(DRAIN_S)},
    )
    load = Load(stack, gateways=stack.gateway_urls())
    exit_codes: dict[str, int | None] = {}

    load.start()
    try:
        load.wait_for_more(REQUESTS_BETWEEN_RESTARTS)
        for kind in ("content", "chat", "health", "gateway"):
            for replica in (0, 1):
                with load.lock:
                    load.stage = f"{kind}-{replica}"
                exit_codes[f"{kind}-{replica}"] = stack.stop(kind, replica=replica)
                stack.start(kind, replica=replica)
                load.wait_for_more(REQUESTS_BETWEEN_RESTARTS)
    finally:
        load.finish()

    assert load.failures == [], "\n".join(load.failures)
    assert set(exit_codes.values()) == {0}
    assert load.completed >= 9 * REQUESTS_BETWEEN_RESTARTS
