"""The gateway's own OpenAPI document: served at a stable path, listing every
route, and describing the one error body every route returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from portfolio_gateway.testing import GatewayTestClient

GATEWAY_ROUTES = [
    ("get", "/api/v1/content"),
    ("get", "/api/v1/content/bundle"),
    ("get", "/api/v1/content/{content_type}/{slug}"),
    ("get", "/api/v1/admin/content"),
    ("post", "/api/v1/admin/content"),
    ("get", "/api/v1/admin/content/{content_id}"),
    ("put", "/api/v1/admin/content/{content_id}"),
    ("delete", "/api/v1/admin/content/{content_id}"),
    ("get", "/api/v1/admin/content/{content_id}/history"),
    ("post", "/api/v1/admin/content/{content_id}/restore"),
    ("post", "/api/v1/admin/cache/flush"),
]


@pytest.fixture
async def document(gateway: GatewayTestClient) -> dict[str, Any]:
    response = await gateway.get("/api/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("method", "path"), GATEWAY_ROUTES)
def test_every_gateway_route_is_documented(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert method in document["paths"][path]


@pytest.mark.parametrize(("method", "path"), GATEWAY_ROUTES)
def test_every_route_documents_the_error_body_for_unavailable_services(
    document: dict[str, Any], method: str, path: str
) -> None:
    schema = document["paths"][path][method]["responses"]["503"]["content"]["application/json"][
        "schema"
    ]

    assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_admin_routes_document_the_401(document: dict[str, Any]) -> None:
    assert "401" in document["paths"]["/api/v1/admin/content"]["get"]["responses"]


def test_public_reads_document_the_304(document: dict[str, Any]) -> None:
    assert "304" in document["paths"]["/api/v1/content/bundle"]["get"]["responses"]


def test_error_detail_requires_code_message_and_request_id(document: dict[str, Any]) -> None:
    detail = document["components"]["schemas"]["ErrorDetail"]

    assert sorted(detail["required"]) == ["code", "message", "requestId"]


async def test_actual_error_has_exactly_the_documented_keys(
    gateway: GatewayTestClient, document: dict[str, Any]
) -> None:
    body = (await gateway.get("/api/v1/admin/content")).json()
    documented = set(document["components"]["schemas"]["ErrorDetail"]["properties"])

    assert set(body) == {"error"}
    assert set(body["error"]) <= documented


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/admin/content"),
        ("put", "/api/v1/admin/content/{content_id}"),
        ("post", "/api/v1/admin/content/{content_id}/restore"),
    ],
)
def test_admin_writes_document_a_json_body(
    document: dict[str, Any], method: str, path: str
) -> None:
    body = document["paths"][path][method]["requestBody"]

    assert "application/json" in body["content"]


def test_delete_documents_its_bare_success_body(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/v1/admin/content/{content_id}"]["delete"]["responses"]["200"]

    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SuccessBody"
    }
