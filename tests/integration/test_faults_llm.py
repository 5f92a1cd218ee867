"""The LLM provider hanging, slow, returning garbage or cutting a stream: every
chat request ends within its bounds with a clean error, and failures count
toward the circuit breaker, which then rejects at once without calling the
provider."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from portfolio_shared.testing.fake_llm import FakeLlm, FakeReply
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from portfolio_shared.testing.servers import ManagedServer

    from conftest import MakeStack

CHAT_PATH = "/api/v1/chat"

LLM_TIMEOUT_MS = 1000
"""``LLM_REQUEST_TIMEOUT_MS`` of the stacks here: a hanging provider is abandoned after it."""

CLIENT_TIMEOUT_S = 15.0
"""Maximum wait for one chat response; a hang past it fails the test."""

FAULT_ENV = {
    "LLM_REQUEST_TIMEOUT_MS": str(LLM_TIMEOUT_MS),
    "LLM_MAX_RETRIES": "0",
    "RATE_LIMIT_CAPACITY": "1000",
    "RATE_LIMIT_REFILL_RATE": "1000",
    "NATS_REQUEST_TIMEOUT_MS": "5000",
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "1000",
}
"""Settings of the shared stack: no retries, and a breaker threshold no test reaches, so each fault is seen on its own."""

ERROR_BODY_KEYS = {"code", "message", "requestId"}


@pytest.fixture(scope="module")
def fault_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory, module_fake: FakeLlm
) -> Iterator[Stack]:
    options = StackOptions(
        nats_url=nats_server.url,
        data_dir=tmp_path_factory.mktemp("llm-faults"),
        llm_base_url=module_fake.base_url,
        env=FAULT_ENV,
    )
    with Stack(options) as stack:
        stack.start_all()
        yield stack


@pytest.fixture
def fake(module_fake: FakeLlm) -> FakeLlm:
    module_fake.reset()
    module_fake.responder = None
    module_fake.default = FakeReply.reply_text("Hello from the fake model.")
    return module_fake


def ask(stack: Stack, visitor: str) -> httpx.Response:
    return httpx.post(
        stack.gateway_url + CHAT_PATH,
        json={"message": "What have you built?", "visitorId": visitor},
        timeout=CLIENT_TIMEOUT_S,
    )


def stream_events(stack: Stack, visitor: str) -> list[tuple[str, Any]]:
    """Return the (event, data) pairs of a streamed chat turn, read until the server ends it."""
    events: list[tuple[str, Any]] = []
    name = ""
    with httpx.stream(
        "POST",
        stack.gateway_url + CHAT_PATH,
        json={"message": "Stream please", "visitorId": visitor},
        headers={"Accept": "text/event-stream"},
        timeout=CLIENT_TIMEOUT_S,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (FakeReply.hang(), f"Request timeout after {LLM_TIMEOUT_MS}ms"),
        (FakeReply.garbage(), None),
        (FakeReply.cut(), None),
        (FakeReply.error_status(500, "provider exploded"), "provider exploded"),
    ],
    ids=["hang", "garbage", "cut", "server-error"],
)
def test_provider_fault_is_a_clean_502(
    fault_stack: Stack, fake: FakeLlm, reply: FakeReply, message: str | None
) -> None:
    fake.default = reply

    response = ask(fault_stack, f"visitor-{reply.kind}")
    error = response.json()["error"]

    assert response.status_code == 502
    assert error["code"] == "LLM_ERROR"
    assert set(error) == ERROR_BODY_KEYS
    assert message is None or error["message"] == message
    assert "Traceback" not in error["message"]


def test_slow_provider_within_timeout_succeeds(fault_stack: Stack, fake: FakeLlm) -> None:
    fake.default = FakeReply.reply_text("slow but fine", chunk_delay_s=0.1)

    response = ask(fault_stack, "visitor-slow")

    assert response.status_code == 200
    assert response.json()["message"]["content"] == "slow but fine"


@pytest.mark.parametrize(
    "reply", [FakeReply.cut("partial answer here"), FakeReply.hang(), FakeReply.garbage()]
)
def test_stream_fault_ends_with_an_error_event(
    fault_stack: Stack, fake: FakeLlm, reply: FakeReply
) -> None:
    fake.default = reply

    events = stream_events(fault_stack, f"visitor-stream-{reply.kind}")
    last_name, last_data = events[-1]

    assert last_name == "error"
    assert last_data["error"]["code"] == "LLM_ERROR"
    assert "done" not in [name for name, _ in events]


@pytest.mark.slow
def test_hanging_provider_opens_the_breaker(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    stack = make_stack(
        env={
            **FAULT_ENV,
            "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "5",
            "CIRCUIT_BREAKER_RESET_TIMEOUT": "300",
        }
    )
    fake_llm.default = FakeReply.hang()

    statuses = [ask(stack, "visitor-breaker").status_code for _ in range(5)]
    calls_before = fake_llm.request_count
    rejected = ask(stack, "visitor-breaker")

    assert statuses == [502] * 5
    assert rejected.status_code == 502
    assert rejected.json()["error"]["message"] == "Circuit breaker is open"
    assert fake_llm.request_count == calls_before
