"""The gateway's Litestar application: ``create_app()`` is the factory granian serves.

Each worker process builds its own ``GatewayState`` in the lifespan: it
registers the gateway as a NATS micro service (so the health service discovers
it and requests its checks: ``cache`` and ``ratelimit``, both non-critical),
builds the rate limiter, the response cache and the admin authenticator, and
subscribes to the events stream for cache invalidation. Routes of every
domain are mounted here, and the edge layer (``http.edge``) wraps Litestar's
own handler so request ids, security headers, CORS, body limits, admin
authentication and deadlines apply before routing, to every response.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from portfolio_shared.contract import Subjects
from portfolio_shared.logging import configure_logging, get_logger
from portfolio_shared.redis_link import RedisLink
from portfolio_shared.runtime import ServiceRuntime
from portfolio_shared.settings import load_settings
from portfolio_shared.tracing import configure_tracing

from portfolio_gateway.auth.admin import AdminAuthenticator
from portfolio_gateway.cache.invalidation import InvalidationListener
from portfolio_gateway.cache.store import ResponseCache
from portfolio_gateway.chat.routes import admin_chat_router, chat_router
from portfolio_gateway.content.admin import admin_content_router
from portfolio_gateway.content.cache_admin import flush_cache
from portfolio_gateway.content.inputs import document_content_inputs
from portfolio_gateway.content.public import public_content_router
from portfolio_gateway.health.routes import health_router
from portfolio_gateway.http.edge import EdgeLayer
from portfolio_gateway.http.errors import exception_handlers
from portfolio_gateway.observability.metrics import metrics_router
from portfolio_gateway.observability.middleware import ObservabilityMiddleware
from portfolio_gateway.ratelimit import RateLimiter
from portfolio_gateway.serving import DRAIN_SIGNAL, WORKER_NUMBER_ENV, worker_instance_id
from portfolio_gateway.settings import GatewaySettings
from portfolio_gateway.state import GatewayState
from portfolio_gateway.webapp import webapp_router

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["GATEWAY_VERSION", "OPENAPI_PATH", "create_app"]

log = get_logger("gateway")

GATEWAY_VERSION = "0.1.0"

OPENAPI_PATH = "/api/openapi.json"
"""Path of the gateway's own OpenAPI document."""


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Portfolio API",
        version=GATEWAY_VERSION,
        description=(
            "Public content, AI chat and the admin CMS of a personal portfolio. Every error "
            "body is `ErrorBody`; every response carries `X-Request-Id`."
        ),
        path="/api",
        render_plugins=[JsonRenderPlugin(path="/openapi.json")],
        components=Components(
            security_schemes={
                "adminKey": SecurityScheme(
                    type="apiKey", name="X-Admin-Key", security_scheme_in="header"
                )
            }
        ),
    )


def create_app(settings: GatewaySettings | None = None) -> Litestar:
    """Build the gateway app from ``settings`` (read from the environment when omitted)."""
    settings = settings or load_settings(GatewaySettings)
    settings = settings.model_copy(
        update={"instance_id": worker_instance_id(settings.instance_id, settings.gateway_workers)}
    )
    configure_logging("gateway", level=settings.log_level, fmt=settings.log_format)
    configure_tracing("gateway")

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            app.state.gateway = await _start_state(settings, stack)
            _listen_for_drain(app.state.gateway, stack)
            try:
                yield
            finally:
                app.state.gateway.started = False

    app = Litestar(
        route_handlers=[
            public_content_router,
            admin_content_router,
            flush_cache,
            webapp_router,
            health_router,
            metrics_router,
            chat_router,
            admin_chat_router,
        ],
        exception_handlers=exception_handlers(),
        lifespan=[lifespan],
        openapi_config=_openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    document_content_inputs(app.openapi_schema)

    # Metrics and the server span wrap the edge layer, so its own responses are counted too.
    edge = EdgeLayer(app.asgi_handler, app, settings)
    app.asgi_handler = ObservabilityMiddleware(edge, app)  # type: ignore[arg-type]
    return app


def _listen_for_drain(state: GatewayState, stack: contextlib.AsyncExitStack) -> None:
    """Mark the worker as draining when ``GatewayServer`` sends ``DRAIN_SIGNAL``.

    Only worker processes of ``GatewayServer`` listen: an app served another way
    (tests, another server) leaves the signal alone.
    """
    if WORKER_NUMBER_ENV not in os.environ:
        return

    def drain() -> None:
        if not state.draining:
            state.draining = True
            log.info("gateway draining: readiness reports 503", instance=state.runtime.instance_id)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(DRAIN_SIGNAL, drain)
    stack.callback(loop.remove_signal_handler, DRAIN_SIGNAL)


async def _start_state(settings: GatewaySettings, stack: contextlib.AsyncExitStack) -> GatewayState:
    """Connect and build every component of one worker, registering their teardown on ``stack``."""
    subjects = Subjects(settings.nats_namespace)
    limiter = RateLimiter.from_settings(settings)
    stack.push_async_callback(limiter.close)
    cache = ResponseCache(
        RedisLink(settings.redis_url, component="cache", key_prefix=settings.redis_key_prefix),
        ttl_s=settings.cache_ttl_s,
        stale_ttl_s=settings.cache_stale_ttl_s,
        max_entries=settings.cache_max_entries,
    )
    stack.push_async_callback(cache.close)
    auth = AdminAuthenticator(settings.accepted_admin_keys, limiter)
    if not auth.configured:
        log.warning("admin key missing: set ADMIN_API_KEY; every admin request gets 401 until then")

    runtime = ServiceRuntime("gateway", settings, version=GATEWAY_VERSION)
    runtime.add_check("cache", cache.check_result, critical=False)
    runtime.add_check("ratelimit", limiter.check_result, critical=False)
    await stack.enter_async_context(runtime)

    state = GatewayState(
        settings=settings,
        nats=runtime.client,
        subjects=subjects,
        limiter=limiter,
        cache=cache,
        auth=auth,
        runtime=runtime,
    )
    listener = InvalidationListener(runtime.client, subjects, cache)
    runtime.on_reconnected(listener.reconnected_hook)
    await listener.start()
    stack.push_async_callback(listener.close)
    state.invalidation = listener
    state.started = True
    log.info(
        "gateway started",
        instance=runtime.instance_id,
        cache_backend=cache.backend,
        admin_keys=len(settings.accepted_admin_keys),
    )
    return state
