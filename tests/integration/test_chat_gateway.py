"""The chat through real processes (gateway, chat, content, health) over loopback HTTP,
with the LLM provider played by the fake OpenAI-compatible server the test scripts.

Tests that leave the circuit breaker alone share one stack (``shared_stack``) and
one fake provider, reset before each test; tests that drive the breaker, or run
without a provider, start a stack of their own.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis
from portfolio_shared.testing.fake_llm import FakeLlm, FakeReply
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portfolio_shared.testing.servers import ManagedServer

    MakeStack = Callable[..., Stack]

CHAT_PATH = "/api/v1/chat"
TIMEOUT_S = 30.0
"""Maximum time of one HTTP request, in seconds (generous for a busy machine)."""

POLL_DEADLINE_S = 20.0
"""Maximum wait for an asynchronous effect (an event, a timer), in seconds."""

GENEROUS_LIMITS = {
    "RATE_LIMIT_CAPACITY": "1000",
    "RATE_LIMIT_REFILL_RATE": "1000",
    "NATS_REQUEST_TIMEOUT_MS": "5000",
}
"""Limits that keep rate limiting and a busy machine's slow replies out of the way."""
BREAKER_ENV = {
    **GENEROUS_LIMITS,
    "LLM_MAX_RETRIES": "0",
    "CIRCUIT_BREAKER_RESET_TIMEOUT": "1",
    "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS": "1",
}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT_S) as client:
        yield client


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeLlm]:
    with FakeLlm() as fake:
        yield fake


@pytest.fixture(scope="module")
def shared_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory, shared_fake: FakeLlm
) -> Iterator[Stack]:
    stack = Stack(
        StackOptions(
            nats_url=nats_server.url,
            data_dir=tmp_path_factory.mktemp("chat-stack"),
            llm_base_url=shared_fake.base_url,
            env=GENEROUS_LIMITS,
        )
    )
    try:
        stack.start_all()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def fake(shared_fake: FakeLlm) -> FakeLlm:
    """The shared stack's provider, with no script, no records and the default reply."""
    shared_fake.reset()
    shared_fake.responder = None
    shared_fake.default = FakeReply.reply_text("Hello from the fake model.")
    return shared_fake


def ask(http: httpx.Client, stack: Stack, message: str = "What have you built?") -> httpx.Response:
    return http.post(
        stack.gateway_url + CHAT_PATH, json={"message": message, "visitorId": "visitor-1"}
    )


def breaker_state(http: httpx.Client, stack: Stack) -> float | None:
    """Value of ``circuit_breaker_state{name="llm"}`` in the merged metrics, if present."""
    text = http.get(stack.gateway_url + "/api/metrics").text
    for line in text.splitlines():
        if line.startswith("circuit_breaker_state{") and 'name="llm"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def breaker_reaches(http: httpx.Client, stack: Stack, value: float) -> bool:
    """Wait until the merged metrics show the circuit in state ``value``; a busy machine's
    metrics scrape may miss the chat instance now and then."""
    return bool(wait_for(lambda: breaker_state(http, stack) == value, f"circuit state {value}"))


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + POLL_DEADLINE_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def open_the_circuit(http: httpx.Client, stack: Stack, fake_llm: FakeLlm) -> list[int]:
    fake_llm.script(*[FakeReply.error_status(500, "provider down")] * 5)
    return [ask(http, stack).status_code for _ in range(5)]


def test_chat_answers_with_json(shared_stack: Stack, fake: FakeLlm, http: httpx.Client) -> None:
    stack = shared_stack
    fake.script(FakeReply.reply_text("Maya built Quiet Pager in Rust.", total_tokens=25))

    response = ask(http, stack)

    body = response.json()
    assert response.status_code == 200
    assert body["message"]["content"] == "Maya built Quiet Pager in Rust."
    assert body["tokensUsed"] == 25
    assert body["sessionId"].startswith("sess_")


def test_sse_first_token_arrives_before_the_provider_finishes(
    shared_stack: Stack, fake: FakeLlm, http: httpx.Client
) -> None:
    stack = shared_stack
    gate = threading.Event()
    fake.script(FakeReply.reply_text("Streaming answers arrive early", gate=gate))

    with http.stream(
        "POST",
        stack.gateway_url + CHAT_PATH,
        json={"message": "Stream please", "visitorId": "visitor-1"},
        headers={"Accept": "text/event-stream", "Accept-Encoding": "gzip, br"},
    ) as response:
        lines = response.iter_lines()
        first_event = next(lines)
        first_data = next(lines)
        completed_before_first_token = fake.completed
        gate.set()
        rest = list(lines)

    assert response.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in response.headers
    assert first_event == "event: token"
    assert first_data == 'data: {"text":"Streaming "}'
    assert completed_before_first_token == 0
    assert "event: done" in rest


def test_sse_client_disconnect_stops_the_provider_call(
    shared_stack: Stack, fake: FakeLlm, http: httpx.Client
) -> None:
    stack = shared_stack
    fake.script(FakeReply.reply_text("This answer is never finished", gate=threading.Event()))

    with http.stream(
        "POST",
        stack.gateway_url + CHAT_PATH,
        json={"message": "Stream please", "visitorId": "visitor-1"},
        headers={"Accept": "text/event-stream"},
    ) as response:
        next(response.iter_lines())

    fake.wait_for_disconnects(1, timeout_s=POLL_DEADLINE_S)
    assert fake.completed == 0


def test_five_failures_open_the_breaker_and_the_sixth_fails_fast(
    make_stack: MakeStack, fake_llm: FakeLlm, http: httpx.Client
) -> None:
    stack = make_stack(env={**BREAKER_ENV, "CIRCUIT_BREAKER_RESET_TIMEOUT": "300"})

    statuses = open_the_circuit(http, stack, fake_llm)
    sixth = ask(http, stack)

    assert statuses == [502] * 5
    assert sixth.status_code == 502
    assert sixth.json()["error"]["message"] == "Circuit breaker is open"
    assert 1 <= int(sixth.headers["retry-after"]) <= 300
    assert fake_llm.request_count == 5
    assert breaker_reaches(http, stack, 2)


def test_breaker_half_opens_after_the_reset_timeout_and_closes_after_successes(
    make_stack: MakeStack, fake_llm: FakeLlm, http: httpx.Client
) -> None:
    stack = make_stack(env=BREAKER_ENV)
    open_the_circuit(http, stack, fake_llm)

    breaker_reaches(http, stack, 1)
    first_trial = ask(http, stack)
    half_open_after_one_success = breaker_reaches(http, stack, 1)
    second_trial = ask(http, stack)

    assert first_trial.status_code == 200
    assert half_open_after_one_success
    assert second_trial.status_code == 200
    assert breaker_reaches(http, stack, 0)


def test_half_open_lets_only_the_bounded_trials_reach_the_provider(
    make_stack: MakeStack, fake_llm: FakeLlm, http: httpx.Client
) -> None:
    stack = make_stack(env=BREAKER_ENV)
    open_the_circuit(http, stack, fake_llm)
    breaker_reaches(http, stack, 1)
    gate = threading.Event()
    fake_llm.script(FakeReply.reply_text("Slow trial answer", gate=gate))

    results: list[httpx.Response] = []
    trial = threading.Thread(
        target=lambda: results.append(
            http.post(
                stack.gateway_url + CHAT_PATH,
                json={"message": "trial", "visitorId": "visitor-2"},
                headers={"Accept": "text/event-stream"},
            )
        )
    )
    trial.start()
    fake_llm.wait_for_requests(6, timeout_s=POLL_DEADLINE_S)
    others = [ask(http, stack) for _ in range(4)]
    gate.set()
    trial.join(TIMEOUT_S)

    assert [response.status_code for response in others] == [502] * 4
    assert {response.json()["error"]["message"] for response in others} == {
        "Circuit breaker is open"
    }
    assert fake_llm.request_count == 6
    assert fake_llm.max_in_flight == 1
    assert "event: done" in results[0].text


def test_provider_rejection_leaves_the_breaker_closed(
    shared_stack: Stack, fake: FakeLlm, http: httpx.Client
) -> None:
    stack = shared_stack
    fake.script(*[FakeReply.error_status(400, "prompt too long")] * 6)

    rejected = [ask(http, stack) for _ in range(6)]
    after = ask(http, stack)

    assert {response.status_code for response in rejected} == {400}
    assert rejected[0].json()["error"]["message"].endswith("prompt too long")
    assert after.status_code == 200
    assert fake.request_count == 7
    assert breaker_reaches(http, stack, 0)


def test_content_edit_changes_the_next_answers_grounding(
    shared_stack: Stack, fake: FakeLlm, http: httpx.Client
) -> None:
    stack = shared_stack
    admin = {"X-Admin-Key": stack.admin_key}
    item = http.get(stack.gateway_url + "/api/v1/content/project/quiet-pager").json()["data"]

    def grounded_on(title: str) -> bool:
        ask(http, stack, "And now?")
        return title in fake.requests[-1]["messages"][0]["content"]

    # A busy machine may time out the first content fetch; the next turns retry it.
    wait_for(lambda: grounded_on("Quiet Pager"), "the content to reach the system prompt")

    updated = http.put(
        f"{stack.gateway_url}/api/v1/admin/content/{item['id']}",
        json={"data": {**item["data"], "title": "Hushed Beeper"}},
        headers=admin,
    )

    assert updated.status_code == 200
    assert wait_for(lambda: grounded_on("Hushed Beeper"), "the edit to reach the system prompt")


def test_offline_mode_answers_from_content(make_stack: MakeStack, http: httpx.Client) -> None:
    stack = make_stack(env=GENEROUS_LIMITS, llm=False)

    response = ask(http, stack, "Which project did you write in Rust?")

    content = response.json()["message"]["content"]
    assert response.status_code == 200
    assert content.startswith("[Offline mode")
    assert "Quiet Pager" in content
    assert stack.stop("chat") == 0


def test_admin_lists_and_ends_sessions(
    shared_stack: Stack, fake: FakeLlm, http: httpx.Client
) -> None:
    stack = shared_stack
    admin = {"X-Admin-Key": stack.admin_key}
    session_id = http.post(
        stack.gateway_url + CHAT_PATH, json={"message": "Hi", "visitorId": "visitor-admin"}
    ).json()["sessionId"]

    listed = http.get(stack.gateway_url + "/api/v1/admin/chat/sessions", headers=admin)
    ended = http.delete(
        f"{stack.gateway_url}/api/v1/admin/chat/sessions/{session_id}", headers=admin
    )
    detail = http.get(f"{stack.gateway_url}/api/v1/admin/chat/sessions/{session_id}", headers=admin)

    assert session_id in [session["id"] for session in listed.json()["data"]]
    assert ended.json() == {"success": True}
    assert detail.json()["data"]["status"] == "ended"
    assert len(detail.json()["data"]["messages"]) == 2


def test_provider_key_never_reaches_the_logs(
    shared_stack: Stack, fake: FakeLlm, http: httpx.Client
) -> None:
    stack = shared_stack
    fake.script(FakeReply.error_status(500, "boom"))
    ask(http, stack)
    ask(http, stack)

    assert fake.headers[0]["authorization"] == f"Bearer {stack.llm_api_key}"
    assert stack.grep_logs(stack.llm_api_key) == []


def test_session_history_lives_under_the_runbook_key(
    make_stack: MakeStack, fake_llm: FakeLlm, http: httpx.Client
) -> None:
    stack = make_stack(env=GENEROUS_LIMITS, redis=True)
    session_id = ask(http, stack).json()["sessionId"]

    assert stack.redis_url is not None
    client = redis.Redis.from_url(stack.redis_url)
    try:
        key = f"{stack.options.redis_key_prefix}session:{session_id}"
        history = [json.loads(item) for item in client.lrange(key, 0, -1)]
        ttl = client.ttl(key)
    finally:
        client.close()

    assert [message["role"] for message in history] == ["user", "assistant"]
    assert ttl > 0
