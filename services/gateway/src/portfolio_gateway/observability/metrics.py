"""``GET /api/metrics``: every instance's metrics in one Prometheus text exposition.

The gateway worker that serves the request adds its own registry (labelled
``service="gateway"`` and its instance name) to what the health service
collected from every other instance. When the health service cannot be
reached, the response still contains this worker's own metrics, with
``metrics_collection_up 0`` saying the rest is missing.

Open by default, as the runbook curls it bare; with ``METRICS_BEARER_TOKEN``
set it requires ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from litestar import Router, get
from litestar.response import Response
from portfolio_shared.contract.messages import ServiceRequest
from portfolio_shared.errors import PortfolioError, UnauthorizedError
from portfolio_shared.exposition import CONTENT_TYPE, ExpositionMerger
from portfolio_shared.logging import get_logger
from portfolio_shared.nats_client import request as nats_request
from prometheus_client import REGISTRY, Gauge, generate_latest

from portfolio_gateway.http.openapi import error_responses

if TYPE_CHECKING:
    from litestar import Request

    from portfolio_gateway.state import GatewayState

__all__ = ["COLLECTION_TIMEOUT_S", "METRICS_PATH", "metrics_router"]

log = get_logger("gateway.metrics")

METRICS_PATH = "/api/metrics"

COLLECTION_TIMEOUT_S = 3.0
"""Maximum wait for the health service's merged exposition, in seconds."""

_NO_STORE = {"cache-control": "no-store"}

COLLECTION_UP = Gauge(
    "metrics_collection_up",
    "1 when the health service returned the other instances' metrics for the last "
    "scrape of this gateway worker, 0 when it did not.",
)


@get(
    METRICS_PATH,
    summary="Prometheus metrics of every service",
    media_type=CONTENT_TYPE,
    responses=error_responses(401),
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway: GatewayState = request.app.state.gateway
    _authorize(request, gateway.settings.metrics_bearer_token)

    others = await _collect_others(gateway, request)
    COLLECTION_UP.set(0 if others is None else 1)

    merger = ExpositionMerger()
    try:
        merger.add_text(
            generate_latest(REGISTRY).decode(),
            {"service": "gateway", "instance": gateway.runtime.instance_id},
        )
        merger.add_up("gateway", gateway.runtime.instance_id, up=True)
        if others is not None:
            merger.add_text(others, {})
        body = merger.render()
    except ValueError as error:
        log.error("metrics merge failed", error=str(error))
        raise PortfolioError("Error collecting metrics") from None
    # The type is set as a header because Litestar would append a second charset to it.
    return Response(
        body, media_type=CONTENT_TYPE, headers={"content-type": CONTENT_TYPE, **_NO_STORE}
    )


def _authorize(request: Request[Any, Any, Any], token: str | None) -> None:
    if not token:
        return
    presented = request.headers.get("authorization", "")
    scheme, _, credentials = presented.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    ):
        raise UnauthorizedError("Missing or invalid bearer token for /api/metrics")


async def _collect_others(gateway: GatewayState, request: Request[Any, Any, Any]) -> str | None:
    """Fetch the health service's exposition of every other instance; ``None`` if unavailable."""
    message = ServiceRequest(
        query={"exclude": gateway.runtime.micro_id},
        request_id=request.scope.get("state", {}).get("request_id"),
    )
    try:
        data = await nats_request(
            gateway.nats,
            gateway.subjects.health_metrics,
            message,
            timeout_s=COLLECTION_TIMEOUT_S,
            service="health",
        )
    except PortfolioError as error:
        log.warning("metrics of other instances unavailable", error=error.message)
        return None
    exposition = data.get("exposition") if isinstance(data, dict) else None
    if not isinstance(exposition, str):
        log.warning("health service metrics reply invalid")
        return None
    return exposition


metrics_router = Router(path="/", route_handlers=[metrics], tags=["operations"])
"""The metrics route, mounted by the gateway app."""
