"""HTTP metrics and the server span of every gateway request.

``ObservabilityMiddleware`` wraps the gateway's whole ASGI app, outside the
edge layer, so that responses the edge layer sends itself (401, 413, 429,
504) are counted too. For each request it

- opens an OpenTelemetry server span (continuing a W3C ``traceparent`` the
  client sent). Handlers run inside it, so ``nats_client.request`` carries it
  into NATS headers and the service's handler span joins the same trace;
- counts ``http_requests_total{method,route,status}`` and observes
  ``http_request_duration_seconds{method,route,status}``, where ``route`` is
  the route template, never the raw path. Probe and metrics paths
  (``/``, ``/api/health*``, ``/api/metrics*``) are not counted.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from portfolio_gateway.observability.routes_match import RouteTemplates

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "ObservabilityMiddleware",
    "is_unmetered_path",
]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered by the gateway, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response, in seconds.",
    ["method", "route", "status"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5),
)

_UNMETERED_PREFIXES = ("/api/health", "/api/metrics")


def is_unmetered_path(path: str) -> bool:
    """Return whether ``path`` is a probe or the metrics endpoint (not counted in HTTP metrics)."""
    normalised = path.rstrip("/").lower()
    if normalised == "":
        return True
    return any(
        normalised == prefix or normalised.startswith(prefix + "/")
        for prefix in _UNMETERED_PREFIXES
    )


class ObservabilityMiddleware:
    """ASGI middleware: one server span and one metrics observation per HTTP request.

    ``litestar`` supplies the route templates for requests rejected before
    routing; without it they are read from ``scope["app"]`` when Litestar set it.
    """

    def __init__(self, app: ASGIApp, litestar: Litestar | None = None) -> None:
        self._app = app
        self._litestar = litestar
        self._templates: RouteTemplates | None = None
        self._tracer = trace.get_tracer("portfolio.gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return

        method = scope["method"]
        started = time.perf_counter()
        status = 0

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        carrier = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        with self._tracer.start_as_current_span(
            f"HTTP {method}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            try:
                await self._app(scope, receive, send_recording_status)
            except BaseException:
                status = status or 500
                raise
            finally:
                route = self._route(scope)
                self._finish_span(span, scope, method, route, status)
                if not is_unmetered_path(scope["path"]):
                    labels = (method, route, str(status))
                    HTTP_REQUESTS.labels(*labels).inc()
                    HTTP_REQUEST_DURATION.labels(*labels).observe(time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        template: str | None = scope.get("path_template")
        if template:
            return template
        return self._route_templates(scope).match(scope["path"])

    def _route_templates(self, scope: Scope) -> RouteTemplates:
        if self._templates is None:
            litestar: Any = self._litestar or scope.get("app")
            routes = getattr(litestar, "routes", [])
            self._templates = RouteTemplates(route.path for route in routes)
        return self._templates

    @staticmethod
    def _finish_span(span: trace.Span, scope: Scope, method: str, route: str, status: int) -> None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.request.method", method)
        span.set_attribute("http.route", route)
        span.set_attribute("url.path", scope["path"])
        span.set_attribute("http.response.status_code", status)
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            span.set_attribute("portfolio.request_id", str(request_id))
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
