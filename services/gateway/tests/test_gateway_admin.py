"""Admin routes: X-Admin-Key checks, key rotation, brute-force limiting, and
forwarding of bodies, headers and the service's status to the content service."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pytest
from portfolio_gateway.testing import ADMIN_KEY, content_item
from portfolio_shared.errors import ConflictError, PreconditionFailedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_gateway.testing import FakeContentService, GatewayTestClient

ADMIN = {"X-Admin-Key": ADMIN_KEY}
ROTATED_KEY = "rotated-admin-key-ABCDEFGHIJKLMNOPQRSTUVWXYZ"

ADMIN_ROUTES = [
    ("GET", "/api/v1/admin/content"),
    ("POST", "/api/v1/admin/content"),
    ("GET", "/api/v1/admin/content/content_abc"),
    ("PUT", "/api/v1/admin/content/content_abc"),
    ("DELETE", "/api/v1/admin/content/content_abc"),
    ("GET", "/api/v1/admin/content/content_abc/history"),
    ("POST", "/api/v1/admin/content/content_abc/restore"),
    ("POST", "/api/v1/admin/cache/flush"),
    ("GET", "/api/v1/admin/no-such-route"),
]


# Authentication


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_every_admin_route_is_401_without_a_key(
    gateway: GatewayTestClient, method: str, path: str
) -> None:
    response = await gateway.request(method, path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_missing_and_a_wrong_key_get_the_same_body(gateway: GatewayTestClient) -> None:
    missing = await gateway.get("/api/v1/admin/content", headers={"X-Request-Id": "same"})
    wrong = await gateway.get(
        "/api/v1/admin/content", headers={"X-Request-Id": "same", "X-Admin-Key": "nope"}
    )

    assert missing.content == wrong.content


async def test_key_differing_only_in_case_is_refused(gateway: GatewayTestClient) -> None:
    response = await gateway.get(
        "/api/v1/admin/content", headers={"X-Admin-Key": ADMIN_KEY.upper()}
    )

    assert response.status_code == 401


async def test_unknown_admin_path_with_a_valid_key_is_404(gateway: GatewayTestClient) -> None:
    response = await gateway.get("/api/v1/admin/no-such-route", headers=ADMIN)

    assert response.status_code == 404


async def test_rotated_key_is_accepted_beside_the_primary(
    make_gateway: Callable[..., Any], fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_list, {"data": []})
    async with make_gateway(admin_api_keys=(ROTATED_KEY,)) as client:
        primary = await client.get("/api/v1/admin/content", headers=ADMIN)
        rotated = await client.get("/api/v1/admin/content", headers={"X-Admin-Key": ROTATED_KEY})

    assert (primary.status_code, rotated.status_code) == (200, 200)


async def test_with_no_key_configured_every_admin_request_is_refused(
    make_gateway: Callable[..., Any],
) -> None:
    async with make_gateway(admin_api_key="") as client:
        response = await client.get("/api/v1/admin/content", headers={"X-Admin-Key": ""})

    assert response.status_code == 401


async def test_repeated_failures_are_rate_limited_even_for_the_right_key(
    make_gateway: Callable[..., Any], fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_list, {"data": []})
    async with make_gateway(
        admin_auth_rate_limit_capacity=3, admin_auth_rate_limit_refill_rate=0.001
    ) as client:
        failures = [
            (await client.get("/api/v1/admin/content", headers={"X-Admin-Key": f"guess-{n}"}))
            for n in range(3)
        ]
        blocked = await client.get("/api/v1/admin/content", headers=ADMIN)

    assert [response.status_code for response in failures] == [401, 401, 401]
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked.json()["error"]["retryAfter"] == int(blocked.headers["retry-after"])


async def test_actor_carries_the_key_fingerprint_not_the_key(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_list, {"data": []})

    await gateway.get("/api/v1/admin/content", headers=ADMIN)

    actor = fake_content.requests_on(fake_content.subjects.content_admin_list)[0].actor
    assert actor is not None
    assert actor.key_fingerprint == hashlib.sha256(ADMIN_KEY.encode()).hexdigest()[:12]


# Forwarding


async def test_create_answers_the_services_201(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    item = content_item()
    fake_content.answer(fake_content.subjects.content_admin_create, {"data": item}, status=201)

    response = await gateway.post("/api/v1/admin/content", json={"type": "project"}, headers=ADMIN)

    assert response.status_code == 201
    assert response.json() == {"data": item}


async def test_json_body_reaches_the_service(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_create, {"data": {}}, status=201)

    await gateway.post(
        "/api/v1/admin/content", json={"type": "project", "data": {"a": 1}}, headers=ADMIN
    )

    request = fake_content.requests_on(fake_content.subjects.content_admin_create)[0]
    assert request.body == {"type": "project", "data": {"a": 1}}


async def test_if_match_and_idempotency_key_are_forwarded(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_update, {"data": content_item()})

    await gateway.put(
        "/api/v1/admin/content/content_abc",
        json={"data": {"title": "X"}},
        headers={**ADMIN, "If-Match": '"v3"', "Idempotency-Key": "key-1"},
    )

    request = fake_content.requests_on(fake_content.subjects.content_admin_update)[0]
    assert (request.params, request.if_match, request.idempotency_key) == (
        {"id": "content_abc"},
        '"v3"',
        "key-1",
    )


async def test_replay_is_marked_idempotent_replayed(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(
        fake_content.subjects.content_admin_create,
        {"data": content_item()},
        status=201,
        replayed=True,
    )

    response = await gateway.post(
        "/api/v1/admin/content", json={}, headers={**ADMIN, "Idempotency-Key": "key-1"}
    )

    assert response.headers["x-idempotent-replayed"] == "true"


async def test_first_execution_is_not_marked_replayed(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_create, {"data": {}}, status=201)

    response = await gateway.post("/api/v1/admin/content", json={}, headers=ADMIN)

    assert "x-idempotent-replayed" not in response.headers


async def test_services_etag_is_sent(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(
        fake_content.subjects.content_admin_get, {"data": content_item()}, headers={"ETag": '"v1"'}
    )

    response = await gateway.get("/api/v1/admin/content/content_abc", headers=ADMIN)

    assert response.headers["etag"] == '"v1"'


async def test_delete_answers_the_bare_success_body(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_delete, {"success": True})

    response = await gateway.delete("/api/v1/admin/content/content_abc?hard=true", headers=ADMIN)

    assert (response.status_code, response.json()) == (200, {"success": True})
    assert fake_content.requests_on(fake_content.subjects.content_admin_delete)[0].query == {
        "hard": "true"
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConflictError("Slug 'a' already exists for type 'b'"), 409),
        (PreconditionFailedError("stale"), 412),
    ],
)
async def test_service_errors_keep_their_status_and_message(
    gateway: GatewayTestClient, fake_content: FakeContentService, error: Any, status: int
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_update, error=error)

    response = await gateway.put("/api/v1/admin/content/content_abc", json={}, headers=ADMIN)

    assert response.status_code == status
    assert response.json()["error"]["message"] == error.message


async def test_restore_and_history_reach_their_subjects(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    await gateway.post(
        "/api/v1/admin/content/content_abc/restore", json={"version": 1}, headers=ADMIN
    )
    await gateway.get("/api/v1/admin/content/content_abc/history?limit=5", headers=ADMIN)

    restore = fake_content.requests_on(fake_content.subjects.content_admin_restore)[0]
    history = fake_content.requests_on(fake_content.subjects.content_admin_history)[0]
    assert (restore.body, history.query) == ({"version": 1}, {"limit": "5"})


async def test_admin_responses_are_not_stored_by_caches(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    fake_content.answer(fake_content.subjects.content_admin_list, {"data": []})

    response = await gateway.get("/api/v1/admin/content", headers=ADMIN)

    assert response.headers["cache-control"] == "no-store"
