"""``GET /api/metrics``: the gateway's own metrics merged with every other instance's."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from portfolio_health.service import HealthService
from portfolio_health.settings import HealthSettings
from portfolio_shared.runtime import ServiceRuntime
from portfolio_shared.settings import CommonSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from portfolio_gateway.testing import GatewayTestClient
    from portfolio_shared.testing.servers import ManagedServer


@contextlib.asynccontextmanager
async def health_and_content(nats_server: ManagedServer, namespace: str) -> AsyncIterator[None]:
    common: dict[str, Any] = {"nats_url": nats_server.url, "nats_namespace": namespace}
    health = HealthService(HealthSettings(**common, instance_id="health-0"))
    content = ServiceRuntime("content", CommonSettings(**common, instance_id="content-0"))
    async with health.runtime, content:
        yield


async def test_content_type_is_prometheus_text(gateway: GatewayTestClient) -> None:
    response = await gateway.get("/api/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


async def test_gateway_samples_carry_service_and_instance(
    make_gateway: Callable[..., Any],
) -> None:
    async with make_gateway(instance_id="gateway-7") as gateway:
        text = (await gateway.get("/api/metrics")).text
    assert 'instance_up{instance="gateway-7",service="gateway"} 1.0' in text


async def test_other_instances_are_merged_in(
    nats_server: ManagedServer, namespace: str, gateway: GatewayTestClient
) -> None:
    async with health_and_content(nats_server, namespace):
        text = (await gateway.get("/api/metrics")).text
    assert 'instance_up{instance="content-0",service="content"} 1.0' in text


async def test_unreachable_health_service_still_serves_own_metrics(
    gateway: GatewayTestClient,
) -> None:
    response = await gateway.get("/api/metrics")
    assert (response.status_code, "metrics_collection_up{" in response.text) == (200, True)


async def test_unreachable_health_service_is_flagged(gateway: GatewayTestClient) -> None:
    text = (await gateway.get("/api/metrics")).text
    flag = next(line for line in text.splitlines() if line.startswith("metrics_collection_up{"))
    assert flag.endswith(" 0.0")


async def test_bearer_token_is_required_when_set(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(metrics_bearer_token="s3cret-token") as gateway:
        response = await gateway.get("/api/metrics")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "UNAUTHORIZED")


async def test_wrong_bearer_token_is_rejected(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(metrics_bearer_token="s3cret-token") as gateway:
        response = await gateway.get(
            "/api/metrics", headers={"Authorization": "Bearer not-the-token"}
        )
    assert response.status_code == 401


async def test_right_bearer_token_is_accepted(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(metrics_bearer_token="s3cret-token") as gateway:
        response = await gateway.get(
            "/api/metrics", headers={"Authorization": "Bearer s3cret-token"}
        )
    assert response.status_code == 200


async def test_merged_exposition_passes_promtool(
    nats_server: ManagedServer, namespace: str, gateway: GatewayTestClient
) -> None:
    await gateway.get("/api/v1/content/project/atlas")
    async with health_and_content(nats_server, namespace):
        text = (await gateway.get("/api/metrics")).text
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run `make test`, which installs it"
    checked = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=text.encode(), capture_output=True
    )
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()
