"""HTTP metrics and traces of the gateway, and the merged ``/api/metrics`` endpoint.

``ObservabilityMiddleware`` (``middleware``) counts and times every request
and opens its server span; ``metrics_router`` (``metrics``) serves every
instance's metrics in one Prometheus exposition.
"""

from portfolio_gateway.observability.metrics import metrics_router
from portfolio_gateway.observability.middleware import ObservabilityMiddleware

__all__ = ["ObservabilityMiddleware", "metrics_router"]
