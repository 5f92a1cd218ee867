"""Chat routes: ``POST /api/v1/chat`` (JSON or Server-Sent Events) and the admin session routes.

A chat request is checked against the chat contract first (400), then spends
a ``chat`` rate-limit token (429), then goes to the chat service. With
``Accept: text/event-stream`` the reply is a stream: the gateway subscribes to
a fresh inbox, requests a stream to it from the chat service, and relays each message
as it arrives (see ``chat.sse``). Errors the chat service raises before it
accepts the stream (validation, unknown session, open circuit) are plain
JSON errors.

Admin routes forward to the chat service's session endpoints behind the
admin key; the session list and detail are ``{"data": ...}``, ending a
session answers a bare ``{"success": true}``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath  # noqa: TC002  (Litestar reads handler annotations at runtime)
from litestar.response import Stream
from portfolio_shared.contract.chat import validate_chat_request
from portfolio_shared.logging import get_logger

from portfolio_gateway.auth.admin import admin_guard
from portfolio_gateway.chat.sse import SSE_HEADERS, relay_stream, start_stream
from portfolio_gateway.forwarding import call_service, service_request
from portfolio_gateway.http.openapi import DataEnvelope, error_responses
from portfolio_gateway.ratelimit import CHAT_POLICY
from portfolio_gateway.state import gateway_state

__all__ = ["admin_chat_router", "chat_router"]

log = get_logger("gateway.chat")

EVENT_STREAM = "text/event-stream"


def wants_event_stream(request: Request[Any, Any, Any]) -> bool:
    """Return whether the client requested Server-Sent Events in ``Accept``."""
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() == EVENT_STREAM for part in accept.split(","))


@post(
    "/",
    summary="Ask the portfolio's AI assistant",
    description=(
        "Body: `message` (1 to 2000 characters), `visitorId` (or the `X-Visitor-Id` header), "
        "optional `sessionId`. `?includeToolCalls=true` adds the tool calls made. With "
        "`Accept: text/event-stream` the answer is streamed as Server-Sent Events: `token` "
        'events (`{"text": ...}`), then one `done` event carrying the JSON reply or one '
        "`error` event carrying an error body."
    ),
    status_code=200,
    responses={
        200: ResponseSpec(data_container=dict[str, Any], description="The assistant's reply"),
        **error_responses(404, 429, 502),
    },
)
async def send_chat(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
    gateway = gateway_state(request)
    message = service_request(request, with_body=True)
    validate_chat_request(message)

    client_hash = request.scope.get("state", {}).get("client_hash", "")
    limit_headers = await gateway.limiter.enforce(CHAT_POLICY, client_hash)
    timeout_ms = gateway.settings.chat_request_timeout_ms

    if wants_event_stream(request):
        started = await start_stream(gateway, request, message, timeout_ms=timeout_ms)
        return Stream(
            relay_stream(gateway, started, request_id=message.request_id or "-"),
            media_type=EVENT_STREAM,
            headers={**SSE_HEADERS, **limit_headers},
        )

    reply = await call_service(
        request, gateway.subjects.chat_send, message, service="chat", timeout_ms=timeout_ms
    )
    return Response(content=reply, headers=limit_headers, media_type="application/json")


chat_router = Router(path="/api/v1/chat", route_handlers=[send_chat], tags=["chat"])


# Admin


_OK = {200: ResponseSpec(data_container=DataEnvelope, description="Success")}


async def _admin_call(request: Request[Any, Any, Any], subject: str, session_id: str | None) -> Any:
    message = service_request(
        request, params={"id": session_id} if session_id is not None else None
    )
    return await call_service(request, subject, message, service="chat")


@get(
    "/",
    summary="List chat sessions, most recently active first",
    description="Query: `status` (active, ended, expired), `limit` 1-100 (50), `offset` (0).",
    responses={**_OK, **error_responses(401, 429)},
)
async def list_sessions(request: Request[Any, Any, Any]) -> Response[Any]:
    data = await _admin_call(
        request, gateway_state(request).subjects.chat_admin_sessions_list, None
    )
    return Response(content={"data": data}, media_type="application/json")


@get(
    "/{session_id:str}",
    summary="Read a chat session with its first 100 messages",
    responses={**_OK, **error_responses(401, 404, 429)},
)
async def get_session(request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[Any]:
    data = await _admin_call(
        request, gateway_state(request).subjects.chat_admin_sessions_get, session_id
    )
    return Response(content={"data": data}, media_type="application/json")


@delete(
    "/{session_id:str}",
    summary="End a chat session (it is kept, with status ended)",
    status_code=200,
    responses={
        200: ResponseSpec(data_container=dict[str, bool], description='{"success": true}'),
        **error_responses(401, 404, 429),
    },
)
async def end_session(request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[Any]:
    data = await _admin_call(
        request, gateway_state(request).subjects.chat_admin_sessions_end, session_id
    )
    return Response(content=data, media_type="application/json")


admin_chat_router = Router(
    path="/api/v1/admin/chat/sessions",
    route_handlers=[list_sessions, get_session, end_session],
    guards=[admin_guard],
    tags=["admin chat"],
    security=[{"adminKey": []}],
)
