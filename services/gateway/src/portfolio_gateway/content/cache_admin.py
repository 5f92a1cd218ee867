"""``POST /api/v1/admin/cache/flush``: drop every replica's content cache at once.

The flush is a ``CacheFlushed`` event on the events stream, which every
replica's invalidation listener applies; this replica also clears its own
cache before it responds, so the caller's next read through it is fresh. If the
event cannot be published the answer is 503 (this replica's cache is cleared
all the same).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from portfolio_shared.contract import CacheFlushed
from portfolio_shared.contract.events import encode_event
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.ids import new_id
from portfolio_shared.logging import get_logger
from portfolio_shared.timeutil import format_timestamp, utc_now

from portfolio_gateway.auth.admin import admin_guard, request_actor
from portfolio_gateway.http.openapi import DataEnvelope, error_responses
from portfolio_gateway.state import gateway_state

__all__ = ["FLUSH_PUBLISH_TIMEOUT_S", "flush_cache"]

log = get_logger("gateway.audit")

FLUSH_PUBLISH_TIMEOUT_S = 2.0
"""Maximum wait for JetStream to acknowledge the flush event, in seconds."""


@post(
    "/api/v1/admin/cache/flush",
    summary="Flush the content cache of every gateway replica",
    status_code=200,
    guards=[admin_guard],
    tags=["admin cache"],
    security=[{"adminKey": []}],
    responses={
        200: ResponseSpec(
            data_container=DataEnvelope,
            description="The flush was broadcast",
            generate_examples=False,
        ),
        **error_responses(401, 429),
    },
)
async def flush_cache(request: Request[Any, Any, Any]) -> Response[Any]:
    gateway = gateway_state(request)
    actor = request_actor(request)
    event = CacheFlushed(
        event_id=new_id("evt"),
        requested_by=actor.key_fingerprint,
        occurred_at=format_timestamp(utc_now()),
    )

    await gateway.cache.clear(reason="flush")
    try:
        ack = await gateway.nats.jetstream().publish(
            gateway.subjects.cache_flushed,
            encode_event(event),
            timeout=FLUSH_PUBLISH_TIMEOUT_S,
            headers={"Nats-Msg-Id": event.event_id},
        )
    except Exception as error:
        log.warning(
            "cache flush not broadcast",
            event_id=event.event_id,
            error=str(error) or type(error).__name__,
        )
        raise ServiceUnavailableError(
            "The cache flush could not be sent to the other replicas: the message bus is unavailable"
        ) from None

    log.info(
        "admin action",
        action="cache_flush",
        event_id=event.event_id,
        sequence=ack.seq,
        key_fingerprint=actor.key_fingerprint,
        request_id=request.scope.get("state", {}).get("request_id"),
        client_hash=actor.client_hash,
    )
    body = {"data": {"flushed": True, "eventId": event.event_id, "sequence": ack.seq}}
    return Response(content=msgspec.to_builtins(body), status_code=200)
