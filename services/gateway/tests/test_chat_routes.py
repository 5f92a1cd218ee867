"""Gateway chat routes in process, against a real chat service on a real NATS, a stand-in
content service and the fake provider."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from portfolio_chat.service import ChatService
from portfolio_chat.settings import ChatSettings
from portfolio_chat.testing import running_content_stand_in
from portfolio_gateway.testing import ADMIN_KEY
from portfolio_shared.testing.fake_llm import FakeReply

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from portfolio_gateway.testing import GatewayTestClient
    from portfolio_shared.testing.fake_llm import FakeLlm
    from portfolio_shared.testing.servers import ManagedServer

ADMIN = {"X-Admin-Key": ADMIN_KEY}


@pytest.fixture
async def chat_backend(
    nats_server: ManagedServer, namespace: str, tmp_path: Path, fake_llm: FakeLlm
) -> AsyncIterator[ChatService]:
    settings = ChatSettings(
        nats_url=nats_server.url,
        nats_namespace=namespace,
        data_dir=tmp_path,
        llm_base_url=fake_llm.base_url,
        llm_max_retries=0,
        circuit_breaker_failure_threshold=2,
        shutdown_timeout_s=2,
    )
    async with (
        running_content_stand_in(nats_server.url, namespace),
        ChatService(settings) as service,
    ):
        yield service


@pytest.fixture
async def client(
    make_gateway: Callable[..., Any], chat_backend: ChatService
) -> AsyncIterator[GatewayTestClient]:
    async with make_gateway(rate_limit_capacity=100, rate_limit_refill_rate=100.0) as gateway:
        yield gateway


def sse_events(body: str) -> list[tuple[str, Any]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_chat_returns_bare_reply(client: GatewayTestClient, fake_llm: FakeLlm) -> None:
    fake_llm.script(FakeReply.reply_text("Hello, visitor."))

    response = await client.post("/api/v1/chat", json={"message": "Hi", "visitorId": "v1"})

    assert response.status_code == 200
    assert response.json()["message"]["content"] == "Hello, visitor."
    assert response.json()["sessionId"].startswith("sess_")


async def test_invalid_chat_body_is_400_with_fields(client: GatewayTestClient) -> None:
    response = await client.post("/api/v1/chat", json={"visitorId": "v1"})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"message": ["Required"]}


async def test_visitor_header_is_forwarded(client: GatewayTestClient) -> None:
    response = await client.post(
        "/api/v1/chat", json={"message": "Hi"}, headers={"X-Visitor-Id": "header-visitor"}
    )

    assert response.status_code == 200


async def test_provider_failure_is_502(client: GatewayTestClient, fake_llm: FakeLlm) -> None:
    fake_llm.script(FakeReply.error_status(500, "boom"))

    response = await client.post("/api/v1/chat", json={"message": "Hi", "visitorId": "v1"})

    assert response.status_code == 502
    assert response.json()["error"] == {
        "code": "LLM_ERROR",
        "message": "boom",
        "requestId": response.headers["x-request-id"],
    }


async def test_open_circuit_is_502_with_retry_after(
    client: GatewayTestClient, fake_llm: FakeLlm
) -> None:
    fake_llm.script(FakeReply.error_status(500), FakeReply.error_status(500))
    for _ in range(2):
        await client.post("/api/v1/chat", json={"message": "Hi", "visitorId": "v1"})

    response = await client.post("/api/v1/chat", json={"message": "Hi", "visitorId": "v1"})

    assert response.status_code == 502
    assert response.json()["error"]["message"] == "Circuit breaker is open"
    assert int(response.headers["retry-after"]) >= 1
    assert fake_llm.request_count == 2


async def test_event_stream_relays_tokens_then_done(
    client: GatewayTestClient, fake_llm: FakeLlm
) -> None:
    fake_llm.script(FakeReply.reply_text("one two three"))

    response = await client.post(
        "/api/v1/chat",
        json={"message": "Count", "visitorId": "v1"},
        headers={"Accept": "text/event-stream"},
    )

    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    tokens = "".join(data["text"] for name, data in events if name == "token")
    assert tokens == "one two three"
    assert events[-1][0] == "done"
    assert events[-1][1]["message"]["content"] == "one two three"


async def test_event_stream_provider_failure_is_error_event(
    client: GatewayTestClient, fake_llm: FakeLlm
) -> None:
    fake_llm.script(FakeReply.error_status(503, "overloaded"))

    response = await client.post(
        "/api/v1/chat",
        json={"message": "Hi", "visitorId": "v1"},
        headers={"Accept": "text/event-stream"},
    )

    name, data = sse_events(response.text)[-1]
    assert name == "error"
    assert data["error"]["code"] == "LLM_ERROR"
    assert data["error"]["message"] == "overloaded"


async def test_event_stream_validation_error_is_plain_400(client: GatewayTestClient) -> None:
    response = await client.post(
        "/api/v1/chat", json={"message": ""}, headers={"Accept": "text/event-stream"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_chat_rate_limit_counts_only_valid_bodies(
    make_gateway: Callable[..., Any], chat_backend: ChatService
) -> None:
    async with make_gateway(rate_limit_capacity=1, rate_limit_refill_rate=0.001) as gateway:
        invalid = await gateway.post("/api/v1/chat", json={"visitorId": "v1"})
        first = await gateway.post("/api/v1/chat", json={"message": "Hi", "visitorId": "v1"})
        second = await gateway.post("/api/v1/chat", json={"message": "Hi", "visitorId": "v1"})

    assert invalid.status_code == 400
    assert first.status_code == 200
    assert second.status_code == 429


async def test_admin_lists_reads_and_ends_sessions(client: GatewayTestClient) -> None:
    chat = await client.post("/api/v1/chat", json={"message": "Hi", "visitorId": "v1"})
    session_id = chat.json()["sessionId"]

    listed = await client.get("/api/v1/admin/chat/sessions", headers=ADMIN)
    detail = await client.get(f"/api/v1/admin/chat/sessions/{session_id}", headers=ADMIN)
    ended = await client.delete(f"/api/v1/admin/chat/sessions/{session_id}", headers=ADMIN)
    after = await client.get("/api/v1/admin/chat/sessions?status=ended", headers=ADMIN)

    assert [session["id"] for session in listed.json()["data"]] == [session_id]
    assert [message["role"] for message in detail.json()["data"]["messages"]] == [
        "user",
        "assistant",
    ]
    assert ended.json() == {"success": True}
    assert after.json()["data"][0]["status"] == "ended"


async def test_admin_session_routes_need_the_key(client: GatewayTestClient) -> None:
    response = await client.get("/api/v1/admin/chat/sessions")

    assert response.status_code == 401


async def test_admin_bad_session_id_is_400(client: GatewayTestClient) -> None:
    response = await client.get("/api/v1/admin/chat/sessions/nope", headers=ADMIN)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"id": ["Invalid session ID format"]}


async def test_admin_unknown_session_is_404(client: GatewayTestClient) -> None:
    missing = "sess_" + "x" * 21
    response = await client.delete(f"/api/v1/admin/chat/sessions/{missing}", headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Session with identifier '{missing}' not found"


async def test_event_stream_is_bounded_by_the_chat_timeout(
    make_gateway: Callable[..., Any], chat_backend: ChatService, fake_llm: FakeLlm
) -> None:
    fake_llm.script(FakeReply.hang())

    async with make_gateway(chat_request_timeout_ms=1000) as gateway:
        response = await gateway.post(
            "/api/v1/chat",
            json={"message": "Hi", "visitorId": "v1"},
            headers={"Accept": "text/event-stream"},
        )
        await asyncio.to_thread(fake_llm.wait_for_disconnects, 1)

    name, data = sse_events(response.text)[-1]
    assert name == "error"
    assert data["error"]["code"] == "REQUEST_TIMEOUT"
    assert data["error"]["message"] == "Request timeout after 1000ms"
