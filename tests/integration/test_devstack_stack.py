"""The integration harness and the walking skeleton it runs: one of each service on loopback.

The sample portfolio is served, readiness is 200 ``ready``, and killing the
content service turns readiness into 503 and content reads into a 503 answer
instead of a hang. The harness itself leaves no process behind and keeps
secrets out of every log.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from portfolio_shared.testing.servers import ManagedServer
from stack import Stack, StackOptions, http_get

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    MakeStack = Callable[..., Stack]

CHANGE_DEADLINE_S = 15.0
"""Maximum wait for readiness to follow a service going away or coming back."""


def _get_json(url: str) -> tuple[int, Any]:
    status, body = http_get(url, timeout_s=10)
    return status, json.loads(body) if body else None


def _poll_status(url: str, expected: int, timeout_s: float = CHANGE_DEADLINE_S) -> int:
    deadline = time.monotonic() + timeout_s
    status, _ = http_get(url, timeout_s=10)
    while status != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        status, _ = http_get(url, timeout_s=10)
    return status


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def shared_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack for the tests that only read, so this file starts few stacks."""
    data_dir: Path = tmp_path_factory.mktemp("shared-stack")
    with Stack(StackOptions(nats_url=nats_server.url, data_dir=data_dir)) as stack:
        stack.start_all()
        yield stack


def test_stack_serves_the_sample_bundle(shared_stack: Stack) -> None:
    status, body = _get_json(f"{shared_stack.gateway_url}/api/v1/content/bundle")

    assert status == 200
    assert body["data"]


def test_stack_reports_ready(shared_stack: Stack) -> None:
    status = _poll_status(f"{shared_stack.gateway_url}/api/health/ready", 200)
    _, body = _get_json(f"{shared_stack.gateway_url}/api/health/ready")

    assert status == 200
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"


def test_killed_content_makes_ready_and_reads_503(stack: Stack) -> None:
    ready_url = f"{stack.gateway_url}/api/health/ready"
    # A never-cached path, so the gateway has to ask the content service.
    item_url = f"{stack.gateway_url}/api/v1/content/project/missing-{time.monotonic_ns()}"
    _poll_status(ready_url, 200)

    stack.kill("content")
    ready_status = _poll_status(ready_url, 503)
    started = time.monotonic()
    read_status, _ = http_get(item_url, timeout_s=10)
    read_seconds = time.monotonic() - started
    stack.start("content")

    assert ready_status == 503
    assert read_status == 503
    assert read_seconds < 5
    assert _poll_status(ready_url, 200) == 200


def test_second_gateway_replica_serves_the_bundle(make_stack: MakeStack) -> None:
    stack = make_stack(replicas={"gateway": 2})

    statuses = [
        http_get(f"{url}/api/v1/content/bundle", timeout_s=10)[0] for url in stack.gateway_urls()
    ]

    assert statuses == [200, 200]


def test_thawed_gateway_serves_again(shared_stack: Stack) -> None:
    shared_stack.freeze("gateway")
    shared_stack.thaw("gateway")

    status, _ = http_get(f"{shared_stack.gateway_url}/api/health/live", timeout_s=10)

    assert status == 200


def test_logs_hold_no_secret(shared_stack: Stack) -> None:
    http_get(f"{shared_stack.gateway_url}/api/v1/admin/content", timeout_s=10)
    _poll_status(f"{shared_stack.gateway_url}/api/health/ready", 200)

    leaks = shared_stack.grep_logs([shared_stack.admin_key, shared_stack.llm_api_key])

    assert leaks == []


@pytest.mark.parametrize("kind", ["content", "chat", "health", "gateway"])
def test_logs_are_json_with_level_context_message(shared_stack: Stack, kind: str) -> None:
    records = shared_stack.log_records(kind)

    incomplete = [r for r in records if not {"level", "context", "message"} <= set(r)]

    assert records
    assert incomplete == []


# Runs last in this file: it stops the shared stack.
def test_sigterm_exits_zero_and_leaves_no_process(shared_stack: Stack) -> None:
    pids = shared_stack.pids()

    codes = {kind: shared_stack.stop(kind) for kind in ("gateway", "chat", "content", "health")}
    shared_stack.close()

    assert codes == {"gateway": 0, "chat": 0, "content": 0, "health": 0}
    assert [pid for pid in pids if _pid_running(pid)] == []
