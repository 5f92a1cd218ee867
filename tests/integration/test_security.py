"""Security of the real system: admin authentication on every admin route, CORS,
security headers, size limits, and no secret or client address in any output.

The admin routes are listed from the gateway app's own route table, so a route
added later is covered without editing this file.
"""

from __future__ import annotations

import hashlib
import re
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from portfolio_gateway.app import create_app
from portfolio_gateway.settings import GatewaySettings
from portfolio_shared.testing.fake_llm import FakeReply
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from portfolio_shared.testing.fake_llm import FakeLlm
    from portfolio_shared.testing.servers import ManagedServer

    from conftest import MakeStack

ADMIN_PREFIX = "/api/v1/admin"

ALLOWED_ORIGIN = "https://portfolio.example"

CLIENT_IP = "203.0.113.77"
"""A documentation address sent as ``X-Forwarded-For`` through a trusted proxy."""

NO_RATE_LIMIT = "1000000"

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}

PATH_PARAMETER_VALUES = {
    "content_id": "content_AAAAAAAAAAAAAAAAAAAAA",
    "session_id": "sess_AAAAAAAAAAAAAAAAAAAAA",
}
"""Well-formed ids for the parameters of admin routes (a route with another parameter fails loudly)."""


def admin_routes() -> list[tuple[str, str]]:
    """Return (method, path) of every admin route of the gateway app, path parameters filled in."""
    app = create_app(GatewaySettings(admin_api_key="x" * 40))
    routes: list[tuple[str, str]] = []
    for route in app.routes:
        if not route.path.startswith(ADMIN_PREFIX):
            continue
        path = re.sub(
            r"\{(\w+)(?::\w+)?\}", lambda match: PATH_PARAMETER_VALUES[match[1]], route.path
        )
        routes.extend(
            (method, path) for method in sorted(route.methods) if method not in {"OPTIONS", "HEAD"}
        )
    return routes


ADMIN_ROUTES = admin_routes()


def test_route_list_covers_every_admin_area() -> None:
    paths = {path for _, path in ADMIN_ROUTES}

    assert {
        "/api/v1/admin/content",
        "/api/v1/admin/content/content_AAAAAAAAAAAAAAAAAAAAA",
        "/api/v1/admin/content/content_AAAAAAAAAAAAAAAAAAAAA/history",
        "/api/v1/admin/content/content_AAAAAAAAAAAAAAAAAAAAA/restore",
        "/api/v1/admin/chat/sessions",
        "/api/v1/admin/chat/sessions/sess_AAAAAAAAAAAAAAAAAAAAA",
        "/api/v1/admin/cache/flush",
    } <= paths


@pytest.fixture(scope="module")
def open_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Start one stack for the module; its failed-key limit never trips, so every attempt reaches the key check."""
    options = StackOptions(
        nats_url=nats_server.url,
        data_dir=tmp_path_factory.mktemp("security"),
        env={"ADMIN_AUTH_RATE_LIMIT_CAPACITY": NO_RATE_LIMIT, "CORS_ORIGINS": ALLOWED_ORIGIN},
    )
    with Stack(options) as stack:
        stack.start_all()
        yield stack


@pytest.mark.parametrize(
    "key", [None, "", "wrong-key-" + "x" * 30], ids=["missing", "empty", "wrong"]
)
def test_every_admin_route_is_401_without_valid_key(open_stack: Stack, key: str | None) -> None:
    headers = {} if key is None else {"X-Admin-Key": key}
    answers = {}
    with httpx.Client(base_url=open_stack.gateway_url, timeout=10) as client:
        for method, path in ADMIN_ROUTES:
            response = client.request(method, path, headers=headers, json={"version": 1})
            answers[f"{method} {path}"] = response.status_code

    assert set(answers.values()) == {401}


def test_unknown_admin_path_is_401_before_404(open_stack: Stack) -> None:
    response = httpx.get(open_stack.gateway_url + "/api/v1/admin/no-such-thing", timeout=10)

    assert response.status_code == 401


def test_admin_key_with_different_case_is_401(open_stack: Stack) -> None:
    response = httpx.get(
        open_stack.gateway_url + "/api/v1/admin/content",
        headers={"X-Admin-Key": open_stack.admin_key.upper()},
        timeout=10,
    )

    assert response.status_code == 401


def test_repeated_wrong_keys_are_rate_limited(make_stack: MakeStack) -> None:
    stack = make_stack(llm=False)
    statuses = [
        httpx.get(
            stack.gateway_url + "/api/v1/admin/content",
            headers={"X-Admin-Key": f"guess-{attempt}"},
            timeout=10,
        ).status_code
        for attempt in range(8)
    ]

    assert statuses[-1] == 429


@pytest.mark.parametrize(
    "path",
    [
        b"/API/V1/ADMIN/CONTENT",
        b"/api/v1/admin/content/",
        b"/api//v1/admin/content",
        b"/api/v1/admin%2Fcontent",
        b"/api/v1/%61dmin/content",
        b"/api/v1/admin/./content",
        b"/api/v1/content/../admin/content",
        b"/api/v1/content/%2e%2e/admin/content",
    ],
)
def test_admin_path_variant_never_bypasses_the_key(open_stack: Stack, path: bytes) -> None:
    address = urlsplit(open_stack.gateway_url)
    request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        status_line = sock.makefile("rb").readline()

    assert status_line.split(b" ")[1] in (b"401", b"404")


# CORS


def test_cors_allows_the_configured_origin(open_stack: Stack) -> None:
    response = httpx.get(
        open_stack.gateway_url + "/api/health", headers={"Origin": ALLOWED_ORIGIN}, timeout=10
    )

    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_cors_ignores_another_origin(open_stack: Stack, method: str) -> None:
    response = httpx.request(
        method,
        open_stack.gateway_url + "/api/v1/content",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )

    assert "access-control-allow-origin" not in response.headers


def test_cors_does_not_reflect_origin_suffix_match(open_stack: Stack) -> None:
    response = httpx.get(
        open_stack.gateway_url + "/api/health",
        headers={"Origin": ALLOWED_ORIGIN + ".evil.example"},
        timeout=10,
    )

    assert "access-control-allow-origin" not in response.headers


# Security headers and limits


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/", None),
        ("GET", "/app/index.html", None),
        ("GET", "/api/health/live", None),
        ("GET", "/api/v1/content", None),
        ("GET", "/api/v1/no-such-route", None),
        ("GET", "/api/v1/admin/content", None),
        ("POST", "/api/v1/chat", b"{not json"),
        ("POST", "/api/v1/chat", b"{" + b" " * 200_000 + b"}"),
        ("OPTIONS", "/api/v1/chat", None),
        ("GET", "/api/metrics", None),
        ("GET", "/api/openapi.json", None),
    ],
)
def test_security_headers_on_every_response(
    open_stack: Stack, method: str, path: str, body: bytes | None
) -> None:
    response = httpx.request(
        method,
        open_stack.gateway_url + path,
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert "x-powered-by" not in response.headers


def test_html_responses_carry_a_strict_csp(open_stack: Stack) -> None:
    response = httpx.get(open_stack.gateway_url + "/app/index.html", timeout=10)
    policy = response.headers.get("content-security-policy", "")

    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in policy or "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy


def test_request_timeout_is_504(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    stack = make_stack(env={"CHAT_REQUEST_TIMEOUT_MS": "1500", "LLM_MAX_RETRIES": "0"})
    fake_llm.default = FakeReply.hang()

    response = httpx.post(
        stack.gateway_url + "/api/v1/chat",
        json={"message": "hello", "visitorId": "visitor-timeout"},
        timeout=20,
    )

    assert response.status_code == 504


# Secrets and client addresses in every output


def test_no_secret_or_client_ip_in_any_output(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    stack = make_stack(
        env={
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "OTEL_TRACES_EXPORTER": "console",
            "LOG_LEVEL": "DEBUG",
        }
    )
    wrong_key = "wrong-admin-key-" + "q" * 30
    outputs: list[str] = []
    with httpx.Client(
        base_url=stack.gateway_url, timeout=20, headers={"X-Forwarded-For": CLIENT_IP}
    ) as client:
        admin = {"X-Admin-Key": stack.admin_key}
        created = client.post(
            "/api/v1/admin/content",
            headers=admin,
            json={"type": "project", "data": {"title": "Secret check"}, "status": "published"},
        )
        content_id = created.json()["data"]["id"]
        for response in (
            created,
            client.put(f"/api/v1/admin/content/{content_id}", headers=admin, json={"data": {}}),
            client.get(f"/api/v1/admin/content/{content_id}/history", headers=admin),
            client.get("/api/v1/admin/content", headers={"X-Admin-Key": wrong_key}),
            client.post("/api/v1/chat", json={"message": "hi", "visitorId": "visitor-secret"}),
            sessions := client.get("/api/v1/admin/chat/sessions", headers=admin),
            client.get("/api/v1/content/project/no-such-item"),
            client.get("/api/metrics"),
            client.get("/api/health/ready"),
        ):
            outputs.append(response.text)
            outputs.append(str(response.headers))
    stack.close()
    outputs.extend(path.read_text(encoding="utf-8", errors="replace") for path in stack.log_files())
    everything = "\n".join(outputs)

    client_hashes = {session["ipHash"] for session in sessions.json()["data"]}

    assert fake_llm.request_count >= 1
    assert hashlib.sha256(CLIENT_IP.encode()).hexdigest()[:16] in client_hashes
    assert stack.admin_key not in everything
    assert wrong_key not in everything
    assert stack.llm_api_key not in everything
    assert CLIENT_IP not in everything
