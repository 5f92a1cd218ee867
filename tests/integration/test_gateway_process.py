"""The gateway as a real process (granian, ``python -m portfolio_gateway``) in a
whole stack: the public read path, errors when the content service is gone,
admin authentication, startup validation, its OpenAPI document and a clean
SIGTERM exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from stack import Stack

    MakeStack = Callable[..., Stack]

CONTENT = "/api/v1/content"

UNAVAILABLE_WITHIN_S = 3.0
"""Maximum time a content read may take once the content service is gone, in seconds."""


def test_bundle_serves_the_sample_portfolio_with_cache_headers(stack: Stack) -> None:
    response = httpx.get(f"{stack.gateway_url}{CONTENT}/bundle", timeout=10)

    assert response.status_code == 200
    assert "project" in response.json()["data"]
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "public, max-age=300"


def test_every_response_carries_the_request_id_and_security_headers(stack: Stack) -> None:
    response = httpx.get(
        f"{stack.gateway_url}/api/v1/unknown", headers={"X-Request-Id": "probe-1"}, timeout=10
    )

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "probe-1"
    assert response.headers["x-frame-options"] == "DENY"


def test_killed_content_service_turns_reads_into_503_not_a_hang(stack: Stack) -> None:
    stack.kill("content")

    response = httpx.get(
        f"{stack.gateway_url}{CONTENT}?type=nothing-cached", timeout=UNAVAILABLE_WITHIN_S
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/admin/content"),
        ("POST", "/api/v1/admin/content"),
        ("GET", "/api/v1/admin/content/content_x/history"),
        ("POST", "/api/v1/admin/cache/flush"),
        ("GET", "/api/v1/admin/chat/sessions"),
    ],
)
def test_admin_routes_refuse_a_missing_key(stack: Stack, method: str, path: str) -> None:
    response = httpx.request(method, f"{stack.gateway_url}{path}", timeout=10)

    assert response.status_code == 401


def test_admin_key_is_never_logged(stack: Stack) -> None:
    httpx.get(
        f"{stack.gateway_url}/api/v1/admin/content",
        headers={"X-Admin-Key": stack.admin_key},
        timeout=10,
    )
    httpx.get(
        f"{stack.gateway_url}/api/v1/admin/content", headers={"X-Admin-Key": "x" * 40}, timeout=10
    )

    assert stack.grep_logs([stack.admin_key, "x" * 40]) == []


def test_openapi_document_lists_every_public_and_admin_route(stack: Stack) -> None:
    document = httpx.get(f"{stack.gateway_url}/api/openapi.json", timeout=10).json()

    paths = set(document["paths"])
    assert {
        "/api/v1/content",
        "/api/v1/content/bundle",
        "/api/v1/content/{content_type}/{slug}",
        "/api/v1/admin/content",
        "/api/v1/admin/content/{content_id}",
        "/api/v1/admin/content/{content_id}/history",
        "/api/v1/admin/content/{content_id}/restore",
        "/api/v1/admin/cache/flush",
    } <= paths
    assert "ErrorBody" in document["components"]["schemas"]


def test_sigterm_stops_the_gateway_with_exit_code_zero(stack: Stack) -> None:
    code = stack.stop("gateway", sig=signal.SIGTERM)

    assert code == 0


def test_short_admin_key_stops_startup_naming_the_variable(stack: Stack) -> None:
    env = {**stack.env_for("gateway", replica=5), "ADMIN_API_KEY": "too-short"}

    result = subprocess.run(
        [sys.executable, "-m", "portfolio_gateway"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
        cwd=os.getcwd(),
    )

    assert result.returncode != 0
    assert b"ADMIN_API_KEY" in result.stderr


def test_body_over_100_kb_is_413_through_the_server(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.gateway_url}/api/v1/admin/content",
        content=b"{" + b" " * 102_400 + b"}",
        headers={"Content-Type": "application/json", "X-Admin-Key": stack.admin_key},
        timeout=10,
    )

    assert response.status_code == 413
