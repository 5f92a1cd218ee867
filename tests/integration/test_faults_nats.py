"""NATS restarted under steady load: the gateway responds fast (503, or cached
content), and the system recovers without restarting any service."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_shared.testing.servers import ManagedServer
    from stack import Stack

    from conftest import MakeStack

CLIENT_TIMEOUT_S = 5.0
"""Maximum wait for one response during the outage: a slower response counts as a hang."""

OUTAGE_S = 3.0
"""How long NATS stays down while the load keeps running, in seconds."""

RECOVERY_DEADLINE_S = 30.0


class Load:
    """Background load: a thread sends requests in a loop until stopped and counts statuses by phase."""

    def __init__(self, stack: Stack, paths: list[str]) -> None:
        self._stack = stack
        self._paths = paths
        self.phase = "before"
        self.statuses: dict[str, Counter[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(CLIENT_TIMEOUT_S * 2)

    def _run(self) -> None:
        headers = {"X-Admin-Key": self._stack.admin_key}
        with httpx.Client(
            base_url=self._stack.gateway_url, timeout=CLIENT_TIMEOUT_S, headers=headers
        ) as client:
            while not self._stop.is_set():
                for path in self._paths:
                    try:
                        outcome = str(client.get(path).status_code)
                    except httpx.TimeoutException:
                        outcome = "timeout"
                    except httpx.TransportError:
                        outcome = "transport error"
                    self.statuses.setdefault(self.phase, Counter())[f"{path} {outcome}"] += 1
                time.sleep(0.02)


def poll(check: Callable[[], bool], *, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def status_of(stack: Stack, method: str, path: str, **kwargs: object) -> int:
    try:
        response = httpx.request(
            method,
            stack.gateway_url + path,
            headers={"X-Admin-Key": stack.admin_key},
            timeout=CLIENT_TIMEOUT_S,
            **kwargs,  # type: ignore[arg-type]
        )
    except httpx.TransportError:
        return 0
    return response.status_code


@pytest.mark.slow
def test_nats_restart_fails_fast_then_recovers(
    make_stack: MakeStack, own_nats: ManagedServer
) -> None:
    # The load loop runs far above the public content budget (10 requests a
    # second) once the outage makes responses fast; this test is about NATS.
    unlimited = {
        "CONTENT_RATE_LIMIT_CAPACITY": "100000",
        "CONTENT_RATE_LIMIT_REFILL_RATE": "100000",
    }
    stack = make_stack(llm=False, nats_url=own_nats.url, env=unlimited)
    item = httpx.get(stack.gateway_url + "/api/v1/content", timeout=10).json()["data"][0]
    item_path = f"/api/v1/content/{item['type']}/{item['slug']}"
    paths = [item_path, "/api/v1/content", "/api/v1/admin/content?limit=5", "/api/health/ready"]

    with Load(stack, paths) as load:
        poll(lambda: sum(load.statuses.get("before", Counter()).values()) >= 20, deadline_s=10)
        load.phase = "outage"
        own_nats.stop_process_only()
        time.sleep(OUTAGE_S)
        # Keep NATS down until the load loop has asked for the cached item
        # during the outage: on a busy machine one round over the paths can
        # take longer than the outage itself.
        poll(
            lambda: any(
                key.startswith(item_path + " ") for key in load.statuses.get("outage", Counter())
            ),
            deadline_s=RECOVERY_DEADLINE_S,
        )
        load.phase = "restarting"
        own_nats.restart()
        recovered = poll(
            lambda: status_of(stack, "GET", "/api/v1/admin/content?limit=5") == 200,
            deadline_s=RECOVERY_DEADLINE_S,
        )
        load.phase = "after"
        ready = poll(
            lambda: status_of(stack, "GET", "/api/health/ready") == 200,
            deadline_s=RECOVERY_DEADLINE_S,
        )
        created = status_of(
            stack,
            "POST",
            "/api/v1/admin/content",
            json={"type": "nats-fault", "data": {"title": "After restart"}, "status": "published"},
        )
        listed = poll(
            lambda: any(
                entry["type"] == "nats-fault"
                for entry in httpx.get(stack.gateway_url + "/api/v1/content", timeout=10).json()[
                    "data"
                ]
            ),
            deadline_s=RECOVERY_DEADLINE_S,
        )

    outage = load.statuses.get("outage", Counter())
    outcomes_in_outage = {key.rsplit(" ", 1)[1] for key in outage}
    cached_item = {key.rsplit(" ", 1)[1] for key in outage if key.startswith(item_path + " ")}

    assert outage
    assert outcomes_in_outage <= {"200", "503"}
    assert cached_item == {"200"}
    assert recovered
    assert ready
    assert created == 201
    assert listed
