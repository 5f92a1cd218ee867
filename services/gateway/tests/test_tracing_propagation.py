"""One trace per request: the gateway's server span, carried over NATS into the service handler.

The gateway app and a ``ServiceRuntime`` standing in for the content service
run in this process, both exporting to one in-memory span exporter.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from portfolio_gateway.observability import middleware
from portfolio_shared.contract.replies import HttpReply
from portfolio_shared.logging import bind_request_context, configure_logging, get_logger
from portfolio_shared.runtime import ServiceRuntime
from portfolio_shared.settings import CommonSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from portfolio_gateway.testing import GatewayTestClient
    from portfolio_shared.contract.messages import ServiceRequest
    from portfolio_shared.testing.servers import ManagedServer

ITEM_ROUTE = "/api/v1/content/{content_type}/{slug}"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """An in-memory exporter on the process's tracer provider (installed once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
async def content_service(nats_server: ManagedServer, namespace: str) -> AsyncIterator[None]:
    async def item(request: ServiceRequest) -> Any:
        with trace.get_tracer("test.content").start_as_current_span("database query"):
            return HttpReply(body={"data": {"slug": request.params.get("slug")}}).to_data()

    runtime = ServiceRuntime(
        "content", CommonSettings(nats_url=nats_server.url, nats_namespace=namespace)
    )
    runtime.add_endpoint("public_item", runtime.subjects.content_public_item, item)
    async with runtime:
        yield


def span_named(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [span for span in spans.get_finished_spans() if span.name == name]
    assert len(found) == 1, [span.name for span in spans.get_finished_spans()]
    return found[0]


async def test_server_span_named_by_route(
    gateway: GatewayTestClient, content_service: None, spans: InMemorySpanExporter
) -> None:
    await gateway.get("/api/v1/content/project/atlas")
    server = span_named(spans, f"GET {ITEM_ROUTE}")
    assert server.kind == trace.SpanKind.SERVER


async def test_service_handler_span_joins_the_gateway_trace(
    gateway: GatewayTestClient, content_service: None, spans: InMemorySpanExporter
) -> None:
    await gateway.get("/api/v1/content/project/atlas")
    server = span_named(spans, f"GET {ITEM_ROUTE}")
    handler = span_named(spans, "content public_item")
    assert handler.context.trace_id == server.context.trace_id


async def test_handler_span_child_of_server_span(
    gateway: GatewayTestClient, content_service: None, spans: InMemorySpanExporter
) -> None:
    await gateway.get("/api/v1/content/project/atlas")
    server = span_named(spans, f"GET {ITEM_ROUTE}")
    handler = span_named(spans, "content public_item")
    parent_span_id = handler.parent.span_id if handler.parent is not None else None
    assert parent_span_id == server.context.span_id


async def test_database_span_is_in_the_same_trace(
    gateway: GatewayTestClient, content_service: None, spans: InMemorySpanExporter
) -> None:
    await gateway.get("/api/v1/content/project/atlas")
    server = span_named(spans, f"GET {ITEM_ROUTE}")
    query = span_named(spans, "database query")
    assert query.context.trace_id == server.context.trace_id


async def test_incoming_traceparent_is_continued(
    gateway: GatewayTestClient, content_service: None, spans: InMemorySpanExporter
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    await gateway.get(
        "/api/v1/content/project/atlas",
        headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
    )
    server = span_named(spans, f"GET {ITEM_ROUTE}")
    assert format(server.context.trace_id, "032x") == trace_id


@pytest.fixture
def tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the gateway's middleware treat tracing as not configured (no tracer provider)."""
    monkeypatch.setattr(middleware, "tracing_enabled", lambda: False)


async def test_no_server_span_while_tracing_off(
    gateway: GatewayTestClient,
    content_service: None,
    spans: InMemorySpanExporter,
    tracing_off: None,
) -> None:
    await gateway.get("/api/v1/content/project/atlas")
    names = [span.name for span in spans.get_finished_spans()]
    assert f"GET {ITEM_ROUTE}" not in names


async def test_traceparent_reaches_service_while_tracing_off(
    gateway: GatewayTestClient,
    content_service: None,
    spans: InMemorySpanExporter,
    tracing_off: None,
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    await gateway.get(
        "/api/v1/content/project/atlas",
        headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
    )
    handler = span_named(spans, "content public_item")
    assert format(handler.context.trace_id, "032x") == trace_id


def test_json_logs_carry_trace_id(exporter: InMemorySpanExporter) -> None:
    output = io.StringIO()
    configure_logging("gateway", fmt="json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(output))
    try:
        with trace.get_tracer("test").start_as_current_span("request"):
            bind_request_context(request_id="req-1")
            get_logger("gateway.test").info("content served", slug="atlas")
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.configure(logger_factory=structlog.PrintLoggerFactory())
    line = json.loads(output.getvalue().splitlines()[-1])
    assert {"timestamp", "level", "context", "message", "request_id", "trace_id"} <= set(line)
