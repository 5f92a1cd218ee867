"""Whether tracing is on: only a tracer provider other than the API's no-op default turns it on."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from portfolio_shared.tracing import tracing_enabled


@pytest.mark.parametrize(
    ("provider", "enabled"),
    [
        (trace.ProxyTracerProvider(), False),
        (trace.NoOpTracerProvider(), False),
        (TracerProvider(), True),
    ],
)
def test_tracing_enabled_by_provider(
    monkeypatch: pytest.MonkeyPatch, provider: trace.TracerProvider, enabled: bool
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert tracing_enabled() is enabled
