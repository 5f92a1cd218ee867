"""Liveness, startup and readiness probes of the gateway (``health_router``)."""

from portfolio_gateway.health.routes import health_router

__all__ = ["health_router"]
