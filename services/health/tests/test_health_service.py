"""The health service against a real NATS: discovery, deadlines and merged metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from typing import TYPE_CHECKING, TypeVar

import pytest
from nats.micro import add_service
from nats.micro.service import ServiceConfig
from portfolio_health.service import HealthService
from portfolio_health.settings import HealthSettings
from portfolio_shared.contract.health import ReadinessReport
from portfolio_shared.contract.messages import CheckResult, ServiceRequest
from portfolio_shared.contract.subjects import Subjects
from portfolio_shared.nats_client import connect_nats, request
from portfolio_shared.runtime import ServiceRuntime
from portfolio_shared.settings import CommonSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from nats.aio.msg import Msg
    from portfolio_shared.testing.servers import ManagedServer

REQUEST_TIMEOUT_S = 3.0
"""Deadline of one request to the health service in these tests (a busy machine is slow)."""

POLL_DEADLINE_S = 5.0
"""Longest a test asks again for an answer to settle (one discovery round can miss a reply)."""

T = TypeVar("T")


async def eventually(ask: Callable[[], Awaitable[T]], settled: Callable[[T], bool]) -> T:
    """Call ``ask`` until ``settled`` holds for its answer or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_DEADLINE_S
    answer = await ask()
    while not settled(answer) and loop.time() < deadline:
        await asyncio.sleep(0.2)
        answer = await ask()
    return answer


async def database_ok() -> CheckResult:
    return CheckResult(status="ok", critical=True)


async def session_store_down() -> CheckResult:
    return CheckResult(status="error", critical=False, fallback="memory", detail="redis down")


def settings(nats_server: ManagedServer, namespace: str, instance: str) -> CommonSettings:
    return CommonSettings(nats_url=nats_server.url, nats_namespace=namespace, instance_id=instance)


@contextlib.asynccontextmanager
async def running(*runtimes: ServiceRuntime) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for runtime in runtimes:
            await stack.enter_async_context(runtime)
        yield


@contextlib.asynccontextmanager
async def hanging_instance(
    nats_server: ManagedServer, namespace: str, kind: str
) -> AsyncIterator[str]:
    """A registered instance that answers discovery but never its checks or metrics."""
    subjects = Subjects(namespace)
    client = await connect_nats(nats_server.url, name="hanging")
    service = await add_service(
        client,
        ServiceConfig(
            name=subjects.service_name(kind),
            version="0.1.0",
            metadata={"kind": kind, "instance": "hanging"},
        ),
    )

    async def never_answer(msg: Msg) -> None:
        return None

    await client.subscribe(subjects.instance_checks(service.id), cb=never_answer)
    await client.subscribe(subjects.instance_metrics(service.id), cb=never_answer)
    await client.flush()
    try:
        yield service.id
    finally:
        await service.stop()
        await client.close()


@pytest.fixture
async def health(nats_server: ManagedServer, namespace: str) -> AsyncIterator[HealthService]:
    service = HealthService(
        HealthSettings(nats_url=nats_server.url, nats_namespace=namespace, instance_id="health-0")
    )
    async with service.runtime:
        yield service


def content_runtime(nats_server: ManagedServer, namespace: str, name: str) -> ServiceRuntime:
    runtime = ServiceRuntime("content", settings(nats_server, namespace, name))
    runtime.add_check("database", database_ok, critical=True)
    return runtime


async def session_store_ok() -> CheckResult:
    return CheckResult(status="ok", critical=False)


def chat_runtime(
    nats_server: ManagedServer, namespace: str, *, redis_down: bool = False
) -> ServiceRuntime:
    runtime = ServiceRuntime("chat", settings(nats_server, namespace, "chat-0"))
    check = session_store_down if redis_down else session_store_ok
    runtime.add_check("session_store", check, critical=False)
    return runtime


async def ask_ready(health: HealthService) -> ReadinessReport:
    data = await request(
        health.runtime.client,
        health.runtime.subjects.health_ready,
        ServiceRequest(),
        timeout_s=REQUEST_TIMEOUT_S,
        service="health",
    )
    return ReadinessReport.from_builtins(data)


async def ask_metrics(health: HealthService, exclude: str | None = None) -> str:
    data = await request(
        health.runtime.client,
        health.runtime.subjects.health_metrics,
        ServiceRequest(query={"exclude": exclude} if exclude else {}),
        timeout_s=REQUEST_TIMEOUT_S,
        service="health",
    )
    text: str = data["exposition"]
    return text


async def test_ready_when_every_service_answers(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    async with running(
        content_runtime(nats_server, namespace, "content-0"), chat_runtime(nats_server, namespace)
    ):
        answer = await eventually(lambda: ask_ready(health), lambda a: a.status == "ready")
    assert (answer.status, answer.checks["database"]) == ("ready", "ok")


async def test_missing_chat_service_is_named(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    async with running(content_runtime(nats_server, namespace, "content-0")):
        answer = await ask_ready(health)
    assert answer.checks["chat"] == "error"


async def test_unhealthy_without_content_service(health: HealthService) -> None:
    answer = await ask_ready(health)
    assert (answer.status, answer.checks["content"]) == ("unhealthy", "error")


async def test_redis_fallback_is_degraded_and_named(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    async with running(
        content_runtime(nats_server, namespace, "content-0"),
        chat_runtime(nats_server, namespace, redis_down=True),
    ):
        answer = await eventually(lambda: ask_ready(health), lambda a: "session_store" in a.checks)
    assert (answer.status, answer.checks["session_store"]) == (
        "degraded",
        "error (fallback: memory)",
    )


async def test_instance_names_come_from_instance_id(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    async with running(content_runtime(nats_server, namespace, "content-7")):
        answer = await eventually(
            lambda: ask_ready(health), lambda a: any(i.service == "content" for i in a.instances)
        )
    assert ("content", "content-7") in {(item.service, item.instance) for item in answer.instances}


async def test_hanging_instance_listed_unreachable(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    async with (
        running(content_runtime(nats_server, namespace, "content-0")),
        hanging_instance(nats_server, namespace, "content"),
    ):
        answer = await eventually(
            lambda: ask_ready(health), lambda a: any(i.instance == "hanging" for i in a.instances)
        )
    assert ("hanging", "unreachable") in {(item.instance, item.status) for item in answer.instances}


async def test_answer_is_cached_between_close_probes(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    first = await ask_ready(health)
    async with running(content_runtime(nats_server, namespace, "content-0")):
        second = await ask_ready(health)
    assert second.checked_at == first.checked_at


async def test_metrics_labelled_by_instance(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    expected = 'instance_up{instance="content-0",service="content"} 1.0'
    async with running(content_runtime(nats_server, namespace, "content-0")):
        text = await eventually(lambda: ask_metrics(health), lambda t: expected in t)
    assert expected in text


async def test_metrics_report_a_hanging_instance_as_down(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    expected = 'instance_up{instance="hanging",service="chat"} 0.0'
    async with hanging_instance(nats_server, namespace, "chat"):
        text = await eventually(lambda: ask_metrics(health), lambda t: expected in t)
    assert expected in text


async def test_metrics_leave_out_the_excluded_instance(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    gateway = ServiceRuntime("gateway", settings(nats_server, namespace, "gateway-0"))
    async with running(gateway):
        text = await ask_metrics(health, exclude=gateway.micro_id)
    assert 'service="gateway"' not in text


async def test_metrics_include_the_readiness_gauge(health: HealthService) -> None:
    text = await ask_metrics(health)
    assert 'readiness_status{instance="health-0",service="health"} 2.0' in text


async def test_merged_metrics_pass_promtool(
    nats_server: ManagedServer, namespace: str, health: HealthService
) -> None:
    async with (
        running(
            content_runtime(nats_server, namespace, "content-0"),
            content_runtime(nats_server, namespace, "content-1"),
            chat_runtime(nats_server, namespace),
        ),
        hanging_instance(nats_server, namespace, "chat"),
    ):
        text = await ask_metrics(health)
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run `make test`, which installs it"
    checked = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=text.encode(), capture_output=True
    )
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()


async def test_ready_reply_uses_camel_case(health: HealthService) -> None:
    reply = await health.runtime.client.request(
        health.runtime.subjects.health_ready, ServiceRequest().encode(), timeout=1.0
    )
    assert "checkedAt" in json.loads(reply.data)["data"]
