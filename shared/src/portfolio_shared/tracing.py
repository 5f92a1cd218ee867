"""OpenTelemetry tracing, off unless the standard ``OTEL_*`` variables ask for it.

Trace context crosses NATS in message headers (W3C ``traceparent``), so one
HTTP request through the gateway and a service stays one trace.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from opentelemetry import context, propagate, trace

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "configure_tracing",
    "extract_context",
    "inject_headers",
    "tracer",
    "tracing_enabled",
]


def configure_tracing(service: str) -> bool:
    """Install an OTLP exporter when ``OTEL_TRACES_EXPORTER`` or an OTLP endpoint is set.

    Returns whether tracing was enabled. With neither set the API stays a no-op
    and spans cost almost nothing.
    """
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if exporter_name in ("", "none") and not endpoint:
        return False

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def tracing_enabled() -> bool:
    """Return whether a tracer provider other than the API's default no-op one is installed.

    ``configure_tracing`` installs one when an exporter is configured; tests may
    install their own. Until then every span the API opens is a no-op.
    """
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context to outgoing NATS headers and return them."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> context.Context:
    """Return the trace context carried by incoming NATS headers (empty if none)."""
    return propagate.extract(dict(headers or {}))
