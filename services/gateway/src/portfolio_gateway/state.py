"""Shared state of every gateway request handler, kept on ``app.state.gateway``.

The lifespan in ``portfolio_gateway.app`` builds one ``GatewayState`` per
worker process once NATS is connected, and tears it down on shutdown.
Handlers reach it with ``gateway_state(request)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from portfolio_shared.contract import Subjects
    from portfolio_shared.nats_client import NatsClient
    from portfolio_shared.runtime import ServiceRuntime

    from portfolio_gateway.auth.admin import AdminAuthenticator
    from portfolio_gateway.cache.invalidation import InvalidationListener
    from portfolio_gateway.cache.store import ResponseCache
    from portfolio_gateway.ratelimit import RateLimiter
    from portfolio_gateway.settings import GatewaySettings

__all__ = ["GatewayState", "gateway_state"]


@dataclass
class GatewayState:
    """Connections and components of one gateway worker process."""

    settings: GatewaySettings
    nats: NatsClient
    """The worker's NATS connection (the one its micro service registration uses)."""

    subjects: Subjects
    limiter: RateLimiter
    cache: ResponseCache
    auth: AdminAuthenticator
    runtime: ServiceRuntime
    """The micro service registration that makes this worker discoverable by health."""

    invalidation: InvalidationListener | None = None
    started: bool = False
    """True once startup finished; until then the startup probe responds 503."""

    started_at: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the worker began starting."""

    draining: bool = False
    """True once the server is about to stop; the readiness probe then responds 503
    while every other request is still served."""

    extras: dict[str, Any] = field(default_factory=dict)
    """Room for components other modules attach (keyed by their module name)."""


def gateway_state(connection: ASGIConnection[Any, Any, Any, Any]) -> GatewayState:
    """Return the worker's ``GatewayState`` from a request or websocket."""
    state: GatewayState = connection.app.state.gateway
    return state
