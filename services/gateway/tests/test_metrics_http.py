"""HTTP metrics of the gateway: counted by route template, probes left out, errors included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from litestar import Litestar, get
from portfolio_gateway.observability.middleware import ObservabilityMiddleware, is_unmetered_path
from portfolio_gateway.observability.routes_match import UNMATCHED_ROUTE, RouteTemplates
from prometheus_client import REGISTRY

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import Receive, Scope, Send
    from portfolio_gateway.testing import FakeContentService, GatewayTestClient


def counted(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def observed(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


async def test_request_is_counted_under_its_route_template(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    route = "/api/v1/content/{content_type}/{slug}"
    before = counted("GET", route, "200")
    await gateway.get("/api/v1/content/project/atlas")
    assert counted("GET", route, "200") == before + 1


async def test_request_duration_is_observed(
    gateway: GatewayTestClient, fake_content: FakeContentService
) -> None:
    route = "/api/v1/content/{content_type}/{slug}"
    before = observed("GET", route, "200")
    await gateway.get("/api/v1/content/project/other")
    assert observed("GET", route, "200") == before + 1


async def test_service_error_is_counted_with_its_status(gateway: GatewayTestClient) -> None:
    route = "/api/v1/content/{content_type}/{slug}"
    before = counted("GET", route, "503")
    await gateway.get("/api/v1/content/project/gone")
    assert counted("GET", route, "503") == before + 1


@pytest.mark.parametrize(
    ("path", "unmetered"),
    [
        ("/", True),
        ("/api/health", True),
        ("/api/health/ready", True),
        ("/API/Health/Live/", True),
        ("/api/metrics", True),
        ("/api/healthy", False),
        ("/api/v1/content", False),
    ],
)
def test_probe_and_metrics_paths_are_unmetered(path: str, unmetered: bool) -> None:
    assert is_unmetered_path(path) is unmetered


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/content/bundle", "/api/v1/content/bundle"),
        ("/api/v1/content/project/atlas", "/api/v1/content/{type}/{slug}"),
        ("/API/V1/Content/Bundle/", "/api/v1/content/bundle"),
        ("/app/js/main.js", "/app/{file_path}"),
        ("/nowhere", UNMATCHED_ROUTE),
    ],
)
def test_paths_answered_before_routing_map_to_templates(path: str, template: str) -> None:
    templates = RouteTemplates(
        ["/api/v1/content/bundle", "/api/v1/content/{type:str}/{slug:str}", "/app/{file_path:path}"]
    )
    assert templates.match(path) == template


@get("/api/v1/content/{content_type:str}/{slug:str}", sync_to_thread=False)
def item(content_type: str, slug: str) -> dict[str, str]:
    return {"slug": slug}


async def rate_limited_before_routing(scope: Scope, receive: Receive, send: Send) -> None:
    """An edge layer answering 429 itself, as the content rate limit does."""
    await send({"type": "http.response.start", "status": 429, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_response_sent_before_routing_is_counted() -> None:
    litestar = Litestar(route_handlers=[item])
    app = ObservabilityMiddleware(rate_limited_before_routing, litestar)
    route = "/api/v1/content/{content_type}/{slug}"
    before = counted("GET", route, "429")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
    ) as client:
        await client.get("/api/v1/content/project/atlas")
    assert counted("GET", route, "429") == before + 1


async def test_rate_limited_request_is_counted_as_429(
    make_gateway: Callable[..., Any], fake_content: FakeContentService
) -> None:
    route = "/api/v1/content/{content_type}/{slug}"
    before = counted("GET", route, "429")
    async with make_gateway(
        content_rate_limit_capacity=1, content_rate_limit_refill_rate=0.001
    ) as gateway:
        await gateway.get("/api/v1/content/project/atlas")
        limited = await gateway.get("/api/v1/content/project/atlas")
    assert (limited.status_code, counted("GET", route, "429")) == (429, before + 1)


async def test_unknown_path_is_counted_as_unmatched(gateway: GatewayTestClient) -> None:
    before = counted("GET", UNMATCHED_ROUTE, "404")
    await gateway.get("/api/v1/nothing-here/at-all")
    assert counted("GET", UNMATCHED_ROUTE, "404") == before + 1
