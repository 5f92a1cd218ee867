"""Cross-cutting HTTP behaviour of the gateway: request ids, error shape, security
headers, CORS, body limits, routing rules and deadlines."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from portfolio_gateway.testing import ADMIN_KEY, content_item

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_gateway.testing import FakeContentService, GatewayTestClient

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-resource-policy": "cross-origin",
    "cross-origin-opener-policy": "same-origin",
    "origin-agent-cluster": "?1",
    "strict-transport-security": "max-age=15552000; includeSubDomains",
    "x-dns-prefetch-control": "off",
    "x-download-options": "noopen",
    "x-permitted-cross-domain-policies": "none",
    "x-xss-protection": "0",
}

ADMIN = {"X-Admin-Key": ADMIN_KEY}


# Request ids


@pytest.mark.parametrize("incoming", ["abc-123", "trace:1.2_3", "A" * 128])
async def test_well_formed_request_id_is_echoed(gateway: GatewayTestClient, incoming: str) -> None:
    response = await gateway.get("/no/such/route", headers={"X-Request-Id": incoming})

    assert response.headers["x-request-id"] == incoming


async def test_first_of_repeated_request_ids_is_echoed(gateway: GatewayTestClient) -> None:
    response = await gateway.get(
        "/no/such/route", headers=[("X-Request-Id", "first-id"), ("X-Request-Id", "second-id")]
    )

    assert response.headers["x-request-id"] == "first-id"


@pytest.mark.parametrize("incoming", ["", "has space", "a" * 129, "semi;colon", "<script>"])
async def test_malformed_request_id_is_replaced_by_a_uuid4(
    gateway: GatewayTestClient, incoming: str
) -> None:
    response = await gateway.get("/no/such/route", headers={"X-Request-Id": incoming})

    assert UUID4.match(response.headers["x-request-id"])


async def test_error_body_carries_the_response_request_id(
    gateway: GatewayTestClient,
) -> None:
    response = await gateway.get("/no/such/route")

    assert response.json()["error"]["requestId"] == response.headers["x-request-id"]


# Error shape and routing


async def test_unknown_route_is_404_route_not_found(gateway: GatewayTestClient) -> None:
    response = await gateway.get("/api/v1/nothing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert response.json()["error"]["message"] == "Route not found"


async def test_wrong_method_is_404_not_405(gateway: GatewayTestClient) -> None:
    response = await gateway.delete("/api/v1/content")

    assert response.status_code == 404


async def test_single_segment_under_content_is_route_not_found(
    gateway: GatewayTestClient,
) -> None:
    response = await gateway.get("/api/v1/content/project")

    assert response.json()["error"]["message"] == "Route not found"


@pytest.mark.parametrize("path", ["/API/V1/Content/Bundle", "/api/v1/content/bundle/"])
async def test_routes_ignore_case_and_a_trailing_slash(
    gateway: GatewayTestClient, fake_content: FakeContentService, path: str
) -> None:
    fake_content.answer(fake_content.subjects.content_public_bundle, {"data": {}})

    response = await gateway.get(path)

    assert response.status_code == 200


async def test_path_parameters_keep_their_case(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_get, {"data": content_item()})

    await gateway.get("/API/v1/admin/CONTENT/content_MixedCase", headers=ADMIN)

    assert fake_content.requests_on(fake_content.subjects.content_admin_get)[0].params == {
        "id": "content_MixedCase"
    }


async def test_head_is_answered_like_get_without_a_body(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_public_bundle, {"data": {}})

    response = await gateway.head("/api/v1/content/bundle")

    assert (response.status_code, response.content) == (200, b"")


async def test_no_stack_trace_leaks_from_a_failing_handler(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    # A reply that is not a valid HttpReply makes the handler fail unexpectedly.
    fake_content.replies[fake_content.subjects.content_admin_get] = type(
        "R",
        (),
        {
            "data": {"schema": "http-reply.v1", "status": "x"},
            "error": None,
            "gate": None,
            "silent": False,
        },
    )()

    response = await gateway.get("/api/v1/admin/content/content_x", headers=ADMIN)

    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "message": "Internal server error",
        "requestId": response.headers["x-request-id"],
    }


# Security headers


@pytest.mark.parametrize(("method", "path"), [("GET", "/nothing"), ("OPTIONS", "/api/v1/chat")])
async def test_security_headers_are_on_every_response(
    gateway: GatewayTestClient, method: str, path: str
) -> None:
    response = await gateway.request(method, path)

    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


async def test_no_content_security_policy_on_json(gateway: GatewayTestClient) -> None:
    response = await gateway.get("/nothing")

    assert "content-security-policy" not in response.headers


# CORS


ORIGIN = "https://portfolio.example"


@pytest.fixture
async def cors_gateway(make_gateway: Callable[..., Any]) -> Any:
    async with make_gateway(cors_origins=(ORIGIN, "https://other.example")) as client:
        yield client


async def test_preflight_is_204_with_the_allowed_methods_and_headers(
    cors_gateway: GatewayTestClient,
) -> None:
    response = await cors_gateway.options("/api/v1/chat", headers={"Origin": ORIGIN})

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-methods"] == "GET,POST,PUT,DELETE,PATCH,OPTIONS"
    assert "X-Admin-Key" in response.headers["access-control-allow-headers"]
    assert response.headers["access-control-max-age"] == "86400"


async def test_preflight_carries_each_cors_header_once(
    cors_gateway: GatewayTestClient,
) -> None:
    response = await cors_gateway.options("/api/v1/chat", headers={"Origin": ORIGIN})

    assert response.headers.get_list("vary") == ["Origin"]
    assert response.headers.get_list("access-control-allow-origin") == [ORIGIN]
    assert "access-control-expose-headers" not in response.headers


async def test_listed_origin_is_allowed_with_credentials(
    cors_gateway: GatewayTestClient,
) -> None:
    response = await cors_gateway.get("/nothing", headers={"Origin": ORIGIN})

    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-expose-headers"] == "X-Request-Id,X-Idempotent-Replayed"
    assert response.headers["vary"] == "Origin"


async def test_unlisted_origin_gets_no_allow_origin(
    cors_gateway: GatewayTestClient,
) -> None:
    response = await cors_gateway.get("/nothing", headers={"Origin": "https://evil.example"})

    assert "access-control-allow-origin" not in response.headers


async def test_without_cors_origins_no_cors_headers_are_sent(
    gateway: GatewayTestClient,
) -> None:
    response = await gateway.get("/nothing", headers={"Origin": ORIGIN})

    assert "access-control-allow-origin" not in response.headers


async def test_preflights_are_never_rate_limited(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(content_rate_limit_capacity=1) as client:
        statuses = {
            (await client.options("/api/v1/content", headers={"Origin": ORIGIN})).status_code
            for _ in range(5)
        }

    assert statuses == {204}


# Bodies


async def test_body_over_the_limit_is_413(gateway: GatewayTestClient) -> None:
    body = '{"data": "' + "x" * 102_400 + '"}'

    response = await gateway.post(
        "/api/v1/admin/content", content=body, headers={**ADMIN, "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_chunked_body_over_the_limit_is_413(gateway: GatewayTestClient) -> None:
    async def chunks() -> Any:
        for _ in range(30):
            yield b"x" * 4096

    response = await gateway.post(
        "/api/v1/admin/content",
        content=chunks(),
        headers={**ADMIN, "Content-Type": "application/json"},
    )

    assert response.status_code == 413


@pytest.mark.parametrize("body", ["{bad json", '"a string"', "42"])
async def test_malformed_json_body_is_400_bad_request(
    gateway: GatewayTestClient, body: str
) -> None:
    response = await gateway.post(
        "/api/v1/admin/content", content=body, headers={**ADMIN, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "BAD_REQUEST",
        "message": "Malformed request body",
        "requestId": response.headers["x-request-id"],
    }


async def test_body_errors_come_before_authentication(gateway: GatewayTestClient) -> None:
    response = await gateway.post(
        "/api/v1/admin/content", content="{bad", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400


async def test_non_json_body_is_forwarded_as_an_empty_object(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(
        fake_content.subjects.content_admin_create, {"data": content_item()}, status=201
    )

    await gateway.post("/api/v1/admin/content", content="type=project", headers=ADMIN)

    assert fake_content.requests_on(fake_content.subjects.content_admin_create)[0].body == {}


# Deadlines and unavailable services


async def test_request_past_its_deadline_is_504(
    make_gateway: Callable[..., Any], fake_content: FakeContentService
) -> None:
    fake_content.answer(
        fake_content.subjects.content_admin_list, {"data": []}, gate=asyncio.Event()
    )
    async with make_gateway(request_timeout_ms=200, admin_request_timeout_ms=5_000) as client:
        response = await client.get("/api/v1/admin/content", headers=ADMIN)

    assert response.status_code == 504
    assert response.json()["error"]["message"] == "Request timeout after 200ms"


async def test_public_read_past_its_deadline_is_504(
    make_gateway: Callable[..., Any], fake_content: FakeContentService
) -> None:
    fake_content.answer(
        fake_content.subjects.content_public_item, {"data": content_item()}, gate=asyncio.Event()
    )
    async with make_gateway(request_timeout_ms=200, nats_request_timeout_ms=5_000) as client:
        response = await client.get("/api/v1/content/project/atlas")

    assert response.status_code == 504
    assert response.json()["error"]["message"] == "Request timeout after 200ms"
    assert "x-request-id" in response.headers


async def test_public_read_head_has_no_body(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_public_item, {"data": content_item()})

    response = await gateway.head("/api/v1/content/project/atlas")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-cache"] == "MISS"
    assert int(response.headers["content-length"]) > 0


async def test_public_read_crash_is_contract_500(
    gateway: GatewayTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portfolio_gateway.content import public

    async def broken_fetch(*args: object) -> None:
        raise RuntimeError("reply could not be decoded")

    monkeypatch.setattr(public, "_fetch", broken_fetch)

    response = await gateway.get("/api/v1/content/project/atlas")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_SERVER_ERROR"
    assert response.json()["error"]["requestId"] == response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_no_content_service_answers_503(gateway: GatewayTestClient) -> None:
    response = await gateway.get(f"/api/v1/content/project/{uuid.uuid4().hex}")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


async def test_silent_content_service_gives_503(
    make_gateway: Callable[..., Any], fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_public_item, silent=True)

    async with make_gateway(nats_request_timeout_ms=300) as client:
        response = await client.get("/api/v1/content/project/atlas")

    assert response.status_code == 503


# Feature flags


async def test_disabled_admin_api_is_route_not_found(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(feature_admin_api=False) as client:
        response = await client.get("/api/v1/admin/content", headers=ADMIN)

    assert response.status_code == 404
