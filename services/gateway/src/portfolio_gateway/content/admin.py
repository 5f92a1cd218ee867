"""Admin content routes: the CMS API, forwarded to the content service.

The edge layer has already authenticated the admin key (401/429) and parsed
the body (400/413) before these run. Each handler forwards path parameters,
query, body, ``If-Match`` and ``Idempotency-Key`` with the actor (key
fingerprint and client hash). It then sends the service's ``HttpReply`` as it
is: its status (201 on create), headers (``ETag``) and body. A stored replay
also gets ``X-Idempotent-Replayed: true``. Validation belongs to the
content service. Every successful call writes one audit log line.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath  # noqa: TC002 - Litestar reads handler annotations at runtime
from portfolio_shared.logging import get_logger

from portfolio_gateway.auth.admin import admin_guard, request_actor
from portfolio_gateway.forwarding import (
    as_http_reply,
    call_service,
    reply_response,
    service_request,
)
from portfolio_gateway.http.openapi import DataEnvelope, SuccessBody, error_responses
from portfolio_gateway.state import gateway_state

__all__ = ["admin_content_router"]

audit = get_logger("gateway.audit")


async def _forward(
    request: Request[Any, Any, Any],
    subject: str,
    *,
    action: str,
    content_id: str | None = None,
    with_body: bool = False,
    status: int = 200,
) -> Response[Any]:
    gateway = gateway_state(request)
    actor = request_actor(request)
    message = service_request(
        request,
        params={"id": content_id} if content_id is not None else None,
        with_body=with_body,
        actor=actor,
    )
    data = await call_service(
        request,
        subject,
        message,
        service="content",
        timeout_ms=gateway.settings.admin_request_timeout_ms,
    )
    reply = as_http_reply(data, status=status)
    if gateway.settings.feature_audit_log:
        item = reply.body.get("data") if isinstance(reply.body, dict) else None
        audit.info(
            "admin action",
            action=action,
            content_id=content_id or (item.get("id") if isinstance(item, dict) else None),
            version=item.get("version") if isinstance(item, dict) else None,
            key_fingerprint=actor.key_fingerprint,
            request_id=message.request_id,
            client_hash=actor.client_hash,
            status=reply.status,
            replayed=reply.replayed,
        )
    response = reply_response(data, status=status)
    # Admin data (drafts, deleted items, history) must not be kept by browsers or proxies.
    response.headers["Cache-Control"] = "no-store"
    return response


_OK = {
    200: ResponseSpec(data_container=DataEnvelope, description="Success", generate_examples=False)
}


@get(
    "/",
    summary="List content (drafts and deleted too)",
    responses={**_OK, **error_responses(401, 429)},
)
async def list_items(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _forward(
        request, gateway_state(request).subjects.content_admin_list, action="list"
    )


@post(
    "/",
    summary="Create an item",
    responses={
        201: ResponseSpec(
            data_container=DataEnvelope, description="Created", generate_examples=False
        ),
        **error_responses(401, 409, 429),
    },
)
async def create_item(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _forward(
        request,
        gateway_state(request).subjects.content_admin_create,
        action="create",
        with_body=True,
        status=201,
    )


@get(
    "/{content_id:str}", summary="Read an item", responses={**_OK, **error_responses(401, 404, 429)}
)
async def get_item(request: Request[Any, Any, Any], content_id: FromPath[str]) -> Response[Any]:
    return await _forward(
        request,
        gateway_state(request).subjects.content_admin_get,
        action="get",
        content_id=content_id,
    )


@put(
    "/{content_id:str}",
    summary="Update an item",
    description="Send `If-Match` (the item's ETag) or `version` to refuse a lost update.",
    responses={**_OK, **error_responses(401, 404, 409, 412, 429)},
)
async def update_item(request: Request[Any, Any, Any], content_id: FromPath[str]) -> Response[Any]:
    return await _forward(
        request,
        gateway_state(request).subjects.content_admin_update,
        action="update",
        content_id=content_id,
        with_body=True,
    )


@delete(
    "/{content_id:str}",
    summary="Delete an item (soft; `?hard=true` removes it)",
    status_code=200,
    responses={
        200: ResponseSpec(
            data_container=SuccessBody, description="Deleted", generate_examples=False
        ),
        **error_responses(401, 404, 409, 412, 429),
    },
)
async def delete_item(request: Request[Any, Any, Any], content_id: FromPath[str]) -> Response[Any]:
    return await _forward(
        request,
        gateway_state(request).subjects.content_admin_delete,
        action="delete",
        content_id=content_id,
        with_body=True,
    )


@get(
    "/{content_id:str}/history",
    summary="Version history of an item, newest first",
    responses={**_OK, **error_responses(401, 404, 429)},
)
async def item_history(request: Request[Any, Any, Any], content_id: FromPath[str]) -> Response[Any]:
    return await _forward(
        request,
        gateway_state(request).subjects.content_admin_history,
        action="history",
        content_id=content_id,
    )


@post(
    "/{content_id:str}/restore",
    summary="Restore the data of an earlier version as a new version",
    status_code=200,
    responses={**_OK, **error_responses(401, 404, 409, 412, 429)},
)
async def restore_item(request: Request[Any, Any, Any], content_id: FromPath[str]) -> Response[Any]:
    return await _forward(
        request,
        gateway_state(request).subjects.content_admin_restore,
        action="restore",
        content_id=content_id,
        with_body=True,
    )


admin_content_router = Router(
    path="/api/v1/admin/content",
    route_handlers=[
        list_items,
        create_item,
        get_item,
        update_item,
        delete_item,
        item_history,
        restore_item,
    ],
    guards=[admin_guard],
    tags=["admin content"],
    security=[{"adminKey": []}],
)
