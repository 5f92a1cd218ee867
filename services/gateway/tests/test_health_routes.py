"""The gateway's probes: liveness, startup, and readiness asked of the health service."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from portfolio_health.service import HealthService
from portfolio_health.settings import HealthSettings
from portfolio_shared.contract.messages import CheckResult
from portfolio_shared.runtime import ServiceRuntime
from portfolio_shared.settings import CommonSettings
from prometheus_client import REGISTRY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from portfolio_gateway.testing import GatewayTestClient
    from portfolio_shared.testing.servers import ManagedServer


@contextlib.asynccontextmanager
async def stand_ins(
    nats_server: ManagedServer, namespace: str, kinds: tuple[str, ...]
) -> AsyncIterator[None]:
    """In-process stand-ins of the named services (``health`` is the real one)."""

    async def database() -> CheckResult:
        return CheckResult(status="ok", critical=True)

    async def llm() -> CheckResult:
        return CheckResult(status="ok", critical=False)

    async with contextlib.AsyncExitStack() as stack:
        common: dict[str, Any] = {"nats_url": nats_server.url, "nats_namespace": namespace}
        if "content" in kinds:
            content = ServiceRuntime("content", CommonSettings(**common, instance_id="content-0"))
            content.add_check("database", database, critical=True)
            await stack.enter_async_context(content)
        if "chat" in kinds:
            chat = ServiceRuntime("chat", CommonSettings(**common, instance_id="chat-0"))
            chat.add_check("llm", llm, critical=False)
            await stack.enter_async_context(chat)
        if "health" in kinds:
            health = HealthService(HealthSettings(**common, instance_id="health-0"))
            await stack.enter_async_context(health.runtime)
        yield


POLL_DEADLINE_S = 5.0
"""Longest a test waits for readiness to settle (a busy machine can miss one round)."""


async def ready_once_settled(
    gateway: GatewayTestClient, settled: Callable[[dict[str, Any]], bool]
) -> httpx.Response:
    """Ask ``/api/health/ready`` until ``settled(body)`` holds or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_DEADLINE_S
    response = await gateway.get("/api/health/ready")
    while not settled(response.json()) and loop.time() < deadline:
        await asyncio.sleep(0.1)
        response = await gateway.get("/api/health/ready")
    return response


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/health/live"])
async def test_liveness_paths_answer_ok(gateway: GatewayTestClient, path: str) -> None:
    response = await gateway.get(path)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_startup_reports_uptime_and_version(
    gateway: GatewayTestClient,
) -> None:
    body = (await gateway.get("/api/health/startup")).json()
    assert (body["status"], set(body)) == (
        "started",
        {"status", "uptime", "version", "environment"},
    )


async def test_startup_uptime_is_whole_milliseconds(gateway: GatewayTestClient) -> None:
    body = (await gateway.get("/api/health/startup")).json()
    assert isinstance(body["uptime"], int)


async def test_startup_is_503_until_started(gateway: GatewayTestClient) -> None:
    gateway.app.state.gateway.started = False
    response = await gateway.get("/api/health/startup")
    assert response.status_code == 503


async def test_ready_when_every_service_answers(
    nats_server: ManagedServer, namespace: str, gateway: GatewayTestClient
) -> None:
    async with stand_ins(nats_server, namespace, ("content", "chat", "health")):
        response = await ready_once_settled(gateway, lambda body: body["status"] == "ready")
    assert (response.status_code, response.json()["status"]) == (200, "ready")


async def test_ready_database_check_reads_ok(
    nats_server: ManagedServer, namespace: str, gateway: GatewayTestClient
) -> None:
    async with stand_ins(nats_server, namespace, ("content", "chat", "health")):
        response = await ready_once_settled(gateway, lambda body: "database" in body["checks"])
    assert response.json()["checks"]["database"] == "ok"


async def test_ready_names_the_gateway_parts(
    nats_server: ManagedServer, namespace: str, gateway: GatewayTestClient
) -> None:
    async with stand_ins(nats_server, namespace, ("content", "chat", "health")):
        response = await ready_once_settled(gateway, lambda body: "database" in body["checks"])
    checks = response.json()["checks"]
    assert {"nats", "health", "cache", "ratelimit"} <= set(checks)


async def test_missing_chat_is_degraded_with_200(
    nats_server: ManagedServer, namespace: str, gateway: GatewayTestClient
) -> None:
    async with stand_ins(nats_server, namespace, ("content", "health")):
        response = await ready_once_settled(gateway, lambda body: body["status"] == "degraded")
    assert (response.status_code, response.json()["status"]) == (200, "degraded")


async def test_missing_content_is_unhealthy_with_503(
    nats_server: ManagedServer, namespace: str, gateway: GatewayTestClient
) -> None:
    async with stand_ins(nats_server, namespace, ("chat", "health")):
        response = await ready_once_settled(gateway, lambda body: "content" in body["checks"])
    assert (response.status_code, response.json()["checks"]["content"]) == (503, "error")


async def test_unreachable_health_service_is_unhealthy_and_named(
    gateway: GatewayTestClient,
) -> None:
    response = await gateway.get("/api/health/ready")
    assert (response.status_code, response.json()["checks"]["health"]) == (503, "error")


async def test_probes_are_not_counted_in_http_metrics(gateway: GatewayTestClient) -> None:
    await gateway.get("/api/health/live")
    counted = REGISTRY.get_sample_value(
        "http_requests_total", {"method": "GET", "route": "/api/health/live", "status": "200"}
    )
    assert counted is None


async def test_unreachable_health_service_lists_database_as_error(
    gateway: GatewayTestClient,
) -> None:
    response = await gateway.get("/api/health/ready")
    assert response.json()["checks"]["database"] == "error"
