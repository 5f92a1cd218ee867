"""Forwarding an HTTP request to a service over NATS, and turning its reply into a response.

``service_request`` copies what a service needs from the HTTP request (path
parameters, query, the parsed JSON body, selected headers, the client hash and
the admin actor) into a ``ServiceRequest``. ``call_service`` sends it and
returns the reply's data or raises the typed error the service replied with
(``ServiceUnavailableError`` when no instance replies in time). ``reply_response``
sends a reply as HTTP: an ``HttpReply`` with its own status, headers and body,
or plain data wrapped in ``{"data": ...}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Response
from portfolio_shared.contract import ServiceRequest
from portfolio_shared.contract.replies import HttpReply
from portfolio_shared.nats_client import request as nats_request

from portfolio_gateway.state import gateway_state

if TYPE_CHECKING:
    from litestar import Request
    from portfolio_shared.contract import Actor

__all__ = [
    "IDEMPOTENT_REPLAYED_HEADER",
    "as_http_reply",
    "call_service",
    "parsed_body",
    "reply_response",
    "service_request",
]

IDEMPOTENT_REPLAYED_HEADER = "X-Idempotent-Replayed"
"""Header set to ``true`` on a response that is the stored reply to an earlier idempotent request."""


def parsed_body(request: Request[Any, Any, Any]) -> Any:
    """Return the JSON body the edge layer parsed (``{}`` when the body was empty or not JSON)."""
    return request.scope.get("state", {}).get("json_body", {})


def service_request(
    request: Request[Any, Any, Any],
    *,
    params: dict[str, str] | None = None,
    with_body: bool = False,
    actor: Actor | None = None,
    stream_to: str | None = None,
) -> ServiceRequest:
    """Build the ``ServiceRequest`` for ``request`` (the last value of a repeated query key wins)."""
    state = request.scope.get("state", {})
    headers = request.headers
    return ServiceRequest(
        params=params or {},
        query={key: values[-1] for key, values in request.query_params.dict().items() if values},
        body=parsed_body(request) if with_body else None,
        if_match=headers.get("if-match"),
        idempotency_key=headers.get("idempotency-key"),
        visitor_id=headers.get("x-visitor-id"),
        user_agent=headers.get("user-agent"),
        client_hash=state.get("client_hash"),
        actor=actor,
        request_id=state.get("request_id"),
        stream_to=stream_to,
    )


async def call_service(
    request: Request[Any, Any, Any],
    subject: str,
    message: ServiceRequest,
    *,
    service: str,
    timeout_ms: int | None = None,
) -> Any:
    """Send ``message`` and return the reply's data; raises the service's typed error.

    ``timeout_ms`` defaults to ``NATS_REQUEST_TIMEOUT_MS``.
    """
    gateway = gateway_state(request)
    timeout = timeout_ms if timeout_ms is not None else gateway.settings.nats_request_timeout_ms
    return await nats_request(
        gateway.nats, subject, message, timeout_s=timeout / 1000, service=service
    )


def as_http_reply(data: Any, *, status: int = 200) -> HttpReply:
    """Read reply data as an ``HttpReply``; plain data becomes ``{"data": data}`` with ``status``."""
    if HttpReply.is_http_reply(data):
        return HttpReply.from_data(data)
    return HttpReply(status=status, body={"data": data})


def reply_response(data: Any, *, status: int = 200) -> Response[Any]:
    """Build the HTTP response for a service reply (see ``as_http_reply``)."""
    reply = as_http_reply(data, status=status)
    headers = dict(reply.headers)
    if reply.replayed:
        headers[IDEMPOTENT_REPLAYED_HEADER] = "true"
    return Response(
        content=reply.body,
        status_code=reply.status,
        headers=headers,
        media_type="application/json",
    )
