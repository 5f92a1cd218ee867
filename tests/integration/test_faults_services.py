"""One service killed: the routes that need it get a fast 503, every other route
keeps working, and a restarted replica is used again without touching the rest."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from portfolio_shared.testing.fake_llm import FakeLlm, FakeReply
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from portfolio_shared.testing.servers import ManagedServer

    from conftest import MakeStack

CLIENT_TIMEOUT_S = 5.0
"""Maximum wait for one response while a service is down: a slower response counts as a hang."""

SETTLE_DEADLINE_S = 10.0
"""Maximum wait for the statuses to reflect a fault or its repair, in seconds."""

ROUTES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "chat": ("POST", "/api/v1/chat", {"message": "hi", "visitorId": "visitor-faults"}),
    "sessions": ("GET", "/api/v1/admin/chat/sessions", None),
    "admin content": ("GET", "/api/v1/admin/content", None),
    "public content": ("GET", "/api/v1/content", None),
    "metrics": ("GET", "/api/metrics", None),
    "readiness": ("GET", "/api/health/ready", None),
}
"""Routes checked around each fault, by name."""

EXPECTED_WHILE_DOWN = {
    "health": {"readiness": 503},
    "chat": {"chat": 503, "sessions": 503},
    "content": {"admin content": 503, "readiness": 503},
}
"""Statuses that change while one kind is down; every other route stays 200."""


@pytest.fixture(scope="module")
def services_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory, module_fake: FakeLlm
) -> Iterator[Stack]:
    options = StackOptions(
        nats_url=nats_server.url,
        data_dir=tmp_path_factory.mktemp("services-faults"),
        llm_base_url=module_fake.base_url,
        env={"RATE_LIMIT_CAPACITY": "1000"},
    )
    with Stack(options) as stack:
        stack.start_all()
        yield stack


def statuses(stack: Stack) -> dict[str, int]:
    """Return the status of every route in ``ROUTES``, by name."""
    headers = {"X-Admin-Key": stack.admin_key}
    result = {}
    with httpx.Client(
        base_url=stack.gateway_url, timeout=CLIENT_TIMEOUT_S, headers=headers
    ) as client:
        for name, (method, path, body) in ROUTES.items():
            result[name] = client.request(method, path, json=body).status_code
    return result


def statuses_until(stack: Stack, expected: dict[str, int]) -> dict[str, int]:
    """Return ``statuses`` once they equal ``expected``, or the last ones after a deadline.

    Readiness is cached for a moment, so it may take a few rounds to notice a change.
    """
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    seen = statuses(stack)
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = statuses(stack)
    return seen


@pytest.mark.parametrize("kind", ["health", "chat", "content"])
def test_killed_service_fails_only_its_routes(services_stack: Stack, kind: str) -> None:
    stack = services_stack
    expected_down = {name: EXPECTED_WHILE_DOWN[kind].get(name, 200) for name in ROUTES}
    stack.kill(kind)
    try:
        while_down = statuses_until(stack, expected_down)
    finally:
        stack.start(kind)
    after_restart = statuses_until(stack, dict.fromkeys(ROUTES, 200))

    assert while_down == expected_down
    assert after_restart == dict.fromkeys(ROUTES, 200)


def test_chat_killed_mid_stream_ends_with_error_event(
    make_stack: MakeStack, fake_llm: FakeLlm
) -> None:
    stack = make_stack(env={"CHAT_REQUEST_TIMEOUT_MS": "3000"})
    gate = threading.Event()
    fake_llm.default = FakeReply.reply_text("first then nothing", gate=gate)
    events: list[tuple[str, object]] = []
    name = ""

    with httpx.stream(
        "POST",
        stack.gateway_url + "/api/v1/chat",
        json={"message": "Stream please", "visitorId": "visitor-killed"},
        headers={"Accept": "text/event-stream"},
        timeout=15,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
                if name == "token" and len(events) == 1:
                    stack.kill("chat")
    gate.set()

    assert events[0][0] == "token"
    assert events[-1][0] == "error"
