"""HTTP metrics and the server span of every gateway request.

``ObservabilityMiddleware`` wraps the gateway's whole ASGI app, outside the
edge layer, so that responses the edge layer sends itself (401, 413, 429,
504) are counted too. For each request it

- opens an OpenTelemetry server span (continuing a W3C ``traceparent`` the
  client sent). Handlers run inside it, so ``nats_client.request`` carries it
  into NATS headers and the service's handler span joins the same trace.
  While tracing is off (see ``portfolio_shared.tracing``) and the request
  carries no trace context, no span is opened at all: the API's no-op span
  would change nothing;
- counts ``http_requests_total{method,route,status}`` and observes
  ``http_request_duration_seconds{method,route,status}``, where ``route`` is
  the route template, never the raw path. Probe and metrics paths
  (``/``, ``/api/health*``, ``/api/metrics*``) are not counted.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from portfolio_shared.tracing import tracing_enabled
from prometheus_client import Counter, Histogram

from portfolio_gateway.observability.routes_match import RouteTemplates

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar
    from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

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

PATH_CACHE_SIZE = 1024
"""Distinct request paths whose route template and metering are remembered."""

LABEL_CACHE_SIZE = 1024
"""Distinct (method, route, status) label sets whose metric children are remembered."""


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
        # Header names the global propagator reads (``traceparent``, ``tracestate``, ``baggage``).
        self._trace_context_headers = frozenset(
            field.encode("latin-1") for field in propagate.get_global_textmap().fields
        )
        # Matching a path and looking up labelled metric children cost more than
        # counting a request; paths and label sets repeat.
        self._match: Callable[[str], str] | None = None
        self._unmetered = functools.lru_cache(maxsize=PATH_CACHE_SIZE)(is_unmetered_path)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return

        if tracing_enabled() or self._carries_trace_context(scope):
            await self._call_in_span(scope, receive, send)
        else:
            await self._call(scope, receive, send, None)

    def _carries_trace_context(self, scope: Scope) -> bool:
        # Even the no-op span must be opened for such a request: it carries the
        # caller's trace context into NATS headers and log lines.
        names = self._trace_context_headers
        return any(name in names for name, _ in scope["headers"])

    async def _call_in_span(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        carrier = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        with self._tracer.start_as_current_span(
            f"HTTP {scope['method']}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            await self._call(scope, receive, send, span)

    async def _call(
        self, scope: HTTPScope, receive: Receive, send: Send, span: trace.Span | None
    ) -> None:
        method = scope["method"]
        started = time.perf_counter()
        status = 0

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_recording_status)
        except BaseException:
            status = status or 500
            raise
        finally:
            route = self._route(scope)
            if span is not None:
                self._finish_span(span, scope, method, route, status)
            if not self._unmetered(scope["path"]):
                requests, duration = self._metric_children(method, route, status)
                requests.inc()
                duration.observe(time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        template: str | None = scope.get("path_template")
        if template:
            return template
        if self._match is None:
            templates = self._route_templates(scope)
            self._match = functools.lru_cache(maxsize=PATH_CACHE_SIZE)(templates.match)
        return self._match(scope["path"])

    def _route_templates(self, scope: Scope) -> RouteTemplates:
        if self._templates is None:
            litestar: Any = self._litestar or scope.get("app")
            routes = getattr(litestar, "routes", [])
            self._templates = RouteTemplates(route.path for route in routes)
        return self._templates

    def _metric_children(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """Return the ``http_requests_total`` and ``http_request_duration_seconds`` children.

        The children are kept, so they must never be removed from their metrics.
        """
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (HTTP_REQUESTS.labels(*labels), HTTP_REQUEST_DURATION.labels(*labels))
            if len(self._children) < LABEL_CACHE_SIZE:
                self._children[key] = children
        return children

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
