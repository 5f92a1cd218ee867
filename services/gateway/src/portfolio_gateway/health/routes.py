"""The probe endpoints: liveness, startup and aggregated readiness.

- ``GET /``, ``/api/health``, ``/api/health/live``: ``{"status": "ok"}`` while the
  process runs; they depend on nothing else.
- ``GET /api/health/startup``: 503 until this worker has connected to NATS and
  finished starting, then ``{"status": "started", "uptime", "version",
  "environment"}`` (uptime in milliseconds).
- ``GET /api/health/ready``: the health service's ``ReadinessReport`` plus this
  worker's own parts (``nats``, ``health`` and its cache and limiter checks);
  503 when ``unhealthy``, including when the health service cannot be reached
  and while the gateway drains before it stops (``shutdown: error``).

None of them is rate limited or counted in the HTTP metrics.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar import Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from portfolio_shared.contract.health import ReadinessReport
from portfolio_shared.contract.messages import ServiceRequest
from portfolio_shared.errors import PortfolioError
from portfolio_shared.logging import get_logger
from portfolio_shared.nats_client import request as nats_request

if TYPE_CHECKING:
    from litestar import Request

    from portfolio_gateway.state import GatewayState

__all__ = ["HEALTH_PATH_PREFIX", "LIVENESS_PATHS", "READY_TIMEOUT_S", "health_router"]

log = get_logger("gateway.health")

HEALTH_PATH_PREFIX = "/api/health"
"""Every probe path except ``/`` is under this prefix."""

LIVENESS_PATHS = ["/", "/api/health", "/api/health/live"]
"""Paths that return ``{"status": "ok"}`` whenever the process runs."""

READY_TIMEOUT_S = 0.9
"""Maximum wait for the health service's reply, in seconds, so a probe gets a response within a second."""

_NO_STORE = {"Cache-Control": "no-store"}


class ProcessStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Body of the liveness and startup probes."""

    status: Literal["ok", "starting", "started"]
    uptime: int | None = None
    """Milliseconds since this worker began starting (startup probe only)."""

    version: str | None = None
    environment: str | None = None


try:
    VERSION = metadata.version("portfolio-gateway")
except metadata.PackageNotFoundError:  # pragma: no cover - only outside an install
    VERSION = "0.0.0"


def _gateway(request: Request[Any, Any, Any]) -> GatewayState | None:
    gateway: GatewayState | None = request.app.state.get("gateway")
    return gateway


@get(LIVENESS_PATHS, summary="Liveness probe", sync_to_thread=False)
def liveness() -> Response[ProcessStatus]:
    """Return ``ok`` while the process runs; check nothing else."""
    return Response(ProcessStatus(status="ok"), headers=_NO_STORE)


@get(
    "/api/health/startup",
    summary="Startup probe",
    responses={
        503: ResponseSpec(
            data_container=ProcessStatus, description="Still starting", generate_examples=False
        )
    },
    sync_to_thread=False,
)
def startup(request: Request[Any, Any, Any]) -> Response[ProcessStatus]:
    """503 ``{"status": "starting"}`` until the worker is connected and started."""
    gateway = _gateway(request)
    if gateway is None or not gateway.started:
        return Response(ProcessStatus(status="starting"), status_code=503, headers=_NO_STORE)
    started = ProcessStatus(
        status="started",
        uptime=int((time.monotonic() - gateway.started_at) * 1000),
        version=VERSION,
        environment=gateway.settings.environment,
    )
    return Response(started, headers=_NO_STORE)


@get(
    "/api/health/ready",
    summary="Readiness probe",
    description=(
        "200 `ready`; 200 `degraded` when a non-critical part is down; "
        "503 `unhealthy` when a critical part (NATS, the health or content service, "
        "the database) is down. `checks.database` is always `ok` or `error`."
    ),
    responses={
        503: ResponseSpec(
            data_container=ReadinessReport, description="Unhealthy", generate_examples=False
        )
    },
)
async def readiness(request: Request[Any, Any, Any]) -> Response[ReadinessReport]:
    gateway = _gateway(request)
    if gateway is not None and gateway.draining:
        report = _draining()
        return Response(report, status_code=report.http_status, headers=_NO_STORE)
    if gateway is None or gateway.nats.is_closed or not gateway.nats.is_connected:
        report = _without_health(nats="error")
    else:
        report = await _ask_health(gateway, request)

    if gateway is not None:
        local = await gateway.runtime.run_checks()
        for name, result in local.checks.items():
            report = report.with_part(
                name, result.status, critical=result.critical, fallback=result.fallback
            )
    return Response(report, status_code=report.http_status, headers=_NO_STORE)


async def _ask_health(gateway: GatewayState, request: Request[Any, Any, Any]) -> ReadinessReport:
    message = ServiceRequest(request_id=request.scope.get("state", {}).get("request_id"))
    try:
        data = await nats_request(
            gateway.nats,
            gateway.subjects.health_ready,
            message,
            timeout_s=READY_TIMEOUT_S,
            service="health",
        )
        report = ReadinessReport.from_builtins(data)
    except PortfolioError as error:
        log.warning("health service unavailable", error=error.message)
        return _without_health(nats="ok")
    except msgspec.ValidationError as error:
        log.warning("health service reply invalid", error=str(error))
        return _without_health(nats="ok")
    return report.with_part("health", "ok", critical=True).with_part("nats", "ok", critical=True)


def _draining() -> ReadinessReport:
    """Build the report of a gateway that is about to stop: unhealthy, so it leaves rotation."""
    return ReadinessReport(status="unhealthy", checks={"shutdown": "error"}, critical=["shutdown"])


def _without_health(*, nats: str) -> ReadinessReport:
    """Build the report for when the health service cannot be reached: unhealthy, naming it."""
    # The database cannot be confirmed without the health service, and the
    # runbook reads ``checks.database``, so it is listed as an error too.
    checks = {"nats": nats, "health": "error", "database": "error"}
    critical = ["database", "health", "nats"]
    return ReadinessReport(status="unhealthy", checks=checks, critical=critical)


health_router = Router(path="/", route_handlers=[liveness, startup, readiness], tags=["health"])
"""Probe routes, mounted by the gateway app."""
