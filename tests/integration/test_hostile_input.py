"""Hostile requests against the real gateway: none gets a 5xx, none gets past validation.

One stack serves the module. Requests are sent with httpx, or as raw bytes
over a socket where httpx refuses to send them (control characters in
headers, invalid UTF-8, slow clients).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from portfolio_shared.testing.servers import ManagedServer

MAX_BODY_BYTES = 102_400
"""The gateway's default ``MAX_BODY_BYTES``."""

SLOW_CLIENTS = 60
"""Connections that send half a request line and then nothing (slowloris)."""

NO_RATE_LIMIT = "1000000"


@pytest.fixture(scope="module")
def hostile_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    options = StackOptions(
        nats_url=nats_server.url,
        data_dir=tmp_path_factory.mktemp("hostile"),
        env={
            "CONTENT_RATE_LIMIT_CAPACITY": NO_RATE_LIMIT,
            "RATE_LIMIT_CAPACITY": NO_RATE_LIMIT,
            "LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "LLM_MAX_RETRIES": "0",
        },
    )
    with Stack(options) as stack:
        stack.start_all()
        yield stack


@pytest.fixture(scope="module")
def client(hostile_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostile_stack.gateway_url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def admin(hostile_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=hostile_stack.gateway_url,
        timeout=10,
        headers={"X-Admin-Key": hostile_stack.admin_key},
    ) as http:
        yield http


def raw_request(stack: Stack, request: bytes, *, timeout_s: float = 10.0) -> bytes:
    """Send ``request`` as is over a new connection and return every byte the gateway sends back."""
    address = urlsplit(stack.gateway_url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout_s) as sock:
        sock.sendall(request)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    """Return the status code of a raw HTTP/1.1 response (0 when the server closed without one)."""
    if not raw.startswith(b"HTTP/1."):
        return 0
    return int(raw.split(b" ", 2)[1])


def error_code(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body["error"]["code"])


# Sizes


def test_body_over_limit_is_413(client: httpx.Client) -> None:
    body = json.dumps({"message": "x" * MAX_BODY_BYTES, "visitorId": "v"})

    response = client.post(
        "/api/v1/chat", content=body, headers={"Content-Type": "application/json"}
    )

    assert (response.status_code, error_code(response)) == (413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_over_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"x" * 8192

    response = client.post(
        "/api/v1/chat", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413


def test_oversized_header_not_5xx(hostile_stack: Stack) -> None:
    request = (
        b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: "
        + b"a" * 200_000
        + b"\r\nConnection: close\r\n\r\n"
    )

    status = status_of(raw_request(hostile_stack, request))

    assert status < 500


def test_thousands_of_parameters_not_5xx(client: httpx.Client) -> None:
    query = "&".join(f"p{index}={index}" for index in range(5000))

    response = client.get(f"/api/v1/content?{query}")

    assert response.status_code in (200, 400, 414, 431)


def test_repeated_parameter_is_not_5xx(admin: httpx.Client) -> None:
    query = "&".join("limit=1" for _ in range(5000))

    response = admin.get(f"/api/v1/admin/content?{query}")

    assert response.status_code in (200, 400, 414, 431)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nContent-Length: 50\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 99999999999999999999999\r\n",
    ],
    ids=["two-lengths", "length-and-chunked", "negative", "huge"],
)
def test_ambiguous_body_framing_is_400(hostile_stack: Stack, framing: bytes) -> None:
    request = (
        b"POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + framing
        + b"Connection: close\r\n\r\n0\r\n\r\n"
    )

    status = status_of(raw_request(hostile_stack, request))

    assert status in (400, 413)


# JSON


@pytest.mark.parametrize("depth", [200, 1000, 40_000])
def test_deep_json_not_5xx(admin: httpx.Client, depth: int) -> None:
    body = '{"type": "project", "data": {"title": "deep", "x": ' + "[" * depth + "]" * depth + "}}"

    response = admin.post(
        "/api/v1/admin/content", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code in (201, 400, 413)


def test_wide_json_not_5xx(admin: httpx.Client) -> None:
    data: dict[str, object] = {f"k{index}": index for index in range(8000)}
    data["title"] = "Wide"

    response = admin.post("/api/v1/admin/content", json={"type": "hostile", "data": data})

    assert response.status_code in (201, 400, 413)


def test_invalid_utf8_body_is_400(admin: httpx.Client) -> None:
    body = b'{"type": "project", "data": {"title": "\xff\xfe bad"}}'

    response = admin.post(
        "/api/v1/admin/content", content=body, headers={"Content-Type": "application/json"}
    )

    assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST")


def test_invalid_utf8_path_not_5xx(hostile_stack: Stack) -> None:
    request = (
        b"GET /api/v1/content/project/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )

    status = status_of(raw_request(hostile_stack, request))

    assert 0 < status < 500


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30, 1e300])
def test_huge_sort_order_is_400(admin: httpx.Client, number: float) -> None:
    response = admin.post(
        "/api/v1/admin/content",
        json={"type": "hostile", "data": {"title": "Big number"}, "sortOrder": number},
    )

    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/content?offset=9223372036854775808",
        "/api/v1/admin/content/content_x/history?offset=99999999999999999999999",
        "/api/v1/admin/chat/sessions?offset=99999999999999999999999",
    ],
)
def test_huge_offset_is_400(admin: httpx.Client, path: str) -> None:
    response = admin.get(path)

    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")


def test_huge_restore_version_is_not_5xx(admin: httpx.Client) -> None:
    created = admin.post(
        "/api/v1/admin/content", json={"type": "hostile", "data": {"title": "Restore big"}}
    ).json()["data"]

    response = admin.post(
        f"/api/v1/admin/content/{created['id']}/restore", json={"version": 10**30}
    )

    assert response.status_code in (400, 404)


# Names: unicode, confusables, traversal, SQL


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/content/project/%EF%BD%8D%EF%BD%99",  # fullwidth "my"
        "/api/v1/content/project/%D0%B0bout",  # Cyrillic a
        "/api/v1/content/proj%C3%A9ct/x",
        "/api/v1/content/project/a%E2%80%8Bb",  # zero-width space
        "/api/v1/content/..%2F..%2Fetc/passwd",
        "/api/v1/content/project/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/content/project/%2e%2e",
        "/api/v1/content/project/x'%20OR%20'1'='1",
        "/api/v1/content/project/x%3B%20DROP%20TABLE%20content",
        "/api/v1/content/project/%00",
    ],
)
def test_hostile_public_item_path_is_400_or_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code in (400, 404)


@pytest.mark.parametrize(
    "content_id",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "content_..%2F..",
        "content_x'%20OR%201=1--",
        "content_%00",
        "content_%D0%B0",
    ],
)
def test_hostile_admin_content_id_is_400_or_404(admin: httpx.Client, content_id: str) -> None:
    response = admin.get(f"/api/v1/admin/content/{content_id}")

    assert response.status_code in (400, 404)


@pytest.mark.parametrize(
    "query",
    ["type=' OR 1=1 --", "type=project%27%3B%20DROP%20TABLE%20content%3B--", "type=%00"],
)
def test_sql_metacharacters_in_a_filter_are_400(client: httpx.Client, query: str) -> None:
    response = client.get(f"/api/v1/content?{query}")

    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "slug",
    [
        "\uff4d\uff59-project",  # fullwidth "my"
        "\u0430bout",  # Cyrillic a
        "my project",
        "../etc",
        "a/b",
        "x'--",
    ],
)
def test_unusual_slug_on_create_is_400(admin: httpx.Client, slug: str) -> None:
    response = admin.post(
        "/api/v1/admin/content", json={"type": "hostile", "slug": slug, "data": {"title": "T"}}
    )

    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")


def test_sql_text_in_data_is_stored_verbatim(admin: httpx.Client) -> None:
    title = "Robert'); DROP TABLE content;--"
    created = admin.post(
        "/api/v1/admin/content", json={"type": "hostile", "data": {"title": title}}
    ).json()["data"]

    stored = admin.get(f"/api/v1/admin/content/{created['id']}").json()["data"]

    assert stored["data"]["title"] == title


def test_confusable_title_gives_ascii_slug(admin: httpx.Client) -> None:
    response = admin.post(
        "/api/v1/admin/content", json={"type": "hostile", "data": {"title": "\uff30roject \u210c"}}
    )

    assert response.status_code == 400 or response.json()["data"]["slug"].isascii()


# Headers echoed back


@pytest.mark.parametrize(
    "request_id",
    [
        b"abc\r\nSet-Cookie: stolen=1",
        b"abc\nX-Injected: 1",
        b"<script>alert(1)</script>",
        b"x" * 500,
        b"\xff\xfe",
    ],
)
def test_hostile_request_id_replaced(hostile_stack: Stack, request_id: bytes) -> None:
    request = (
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: "
        + request_id
        + b"\r\nConnection: close\r\n\r\n"
    )

    raw = raw_request(hostile_stack, request)
    head = raw.split(b"\r\n\r\n", 1)[0].lower()

    assert b"set-cookie" not in head
    assert b"x-injected" not in head
    assert request_id.lower() not in head


def test_well_formed_request_id_is_echoed(client: httpx.Client) -> None:
    response = client.get("/api/health", headers={"X-Request-Id": "req-123_abc.def:9"})

    assert response.headers["x-request-id"] == "req-123_abc.def:9"


# Slow clients


def test_slow_headers_leave_gateway_serving(hostile_stack: Stack) -> None:
    address = urlsplit(hostile_stack.gateway_url)
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection((address.hostname, address.port), timeout=5)
            sock.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n")
            slow.append(sock)
        answered = threading.Event()

        def normal_client() -> None:
            response = httpx.get(hostile_stack.gateway_url + "/api/health/live", timeout=10)
            if response.status_code == 200:
                answered.set()

        thread = threading.Thread(target=normal_client)
        thread.start()
        thread.join(15)

        assert answered.is_set()
    finally:
        for sock in slow:
            sock.close()


def test_slow_bodies_leave_gateway_serving(hostile_stack: Stack) -> None:
    address = urlsplit(hostile_stack.gateway_url)
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection((address.hostname, address.port), timeout=5)
            sock.sendall(
                b"POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
            slow.append(sock)

        response = httpx.get(hostile_stack.gateway_url + "/api/health/live", timeout=10)

        assert response.status_code == 200
    finally:
        for sock in slow:
            sock.close()
