"""ServiceRuntime against a real NATS server."""

from __future__ import annotations

import asyncio

import pytest
from portfolio_shared.contract import CheckReport, CheckResult, ServiceRequest, Subjects
from portfolio_shared.errors import NotFoundError, ServiceUnavailableError
from portfolio_shared.nats_client import connect_nats, request
from portfolio_shared.runtime import ServiceRuntime
from portfolio_shared.settings import CommonSettings
from portfolio_shared.testing.servers import ManagedServer


def make_settings(nats_server: ManagedServer, namespace: str) -> CommonSettings:
    return CommonSettings(nats_url=nats_server.url, nats_namespace=namespace)


async def echo(request: ServiceRequest) -> dict[str, str]:
    if request.params.get("id") == "missing":
        raise NotFoundError("Content with identifier 'missing' not found")
    await asyncio.sleep(0.05)
    return {"id": request.params.get("id", "")}


async def test_request_reaches_handler_and_returns_data(
    nats_server: ManagedServer, namespace: str
) -> None:
    runtime = ServiceRuntime("content", make_settings(nats_server, namespace))
    runtime.add_endpoint("echo", f"{namespace}.echo", echo)
    async with runtime:
        data = await request(
            runtime.client,
            f"{namespace}.echo",
            ServiceRequest(params={"id": "a"}),
            timeout_s=1,
            service="content",
        )
    assert data == {"id": "a"}


async def test_handler_error_arrives_typed(nats_server: ManagedServer, namespace: str) -> None:
    runtime = ServiceRuntime("content", make_settings(nats_server, namespace))
    runtime.add_endpoint("echo", f"{namespace}.echo", echo)
    async with runtime:
        with pytest.raises(NotFoundError, match="'missing' not found"):
            await request(
                runtime.client,
                f"{namespace}.echo",
                ServiceRequest(params={"id": "missing"}),
                timeout_s=1,
                service="content",
            )


async def test_no_responders_is_service_unavailable(
    nats_server: ManagedServer, namespace: str
) -> None:
    client = await connect_nats(nats_server.url, name="test")
    try:
        with pytest.raises(ServiceUnavailableError, match="no instance is running"):
            await request(
                client, f"{namespace}.nobody", ServiceRequest(), timeout_s=1, service="content"
            )
    finally:
        await client.close()


async def test_handlers_run_concurrently(nats_server: ManagedServer, namespace: str) -> None:
    # Each handler waits until all twenty are in flight, so handlers run one
    # after another would never return and the requests would time out.
    barrier = asyncio.Barrier(20)

    async def wait_for_all(request: ServiceRequest) -> str:
        await barrier.wait()
        return request.params["id"]

    runtime = ServiceRuntime("content", make_settings(nats_server, namespace))
    runtime.add_endpoint("wait", f"{namespace}.wait", wait_for_all)
    async with runtime:
        results = await asyncio.gather(
            *(
                request(
                    runtime.client,
                    f"{namespace}.wait",
                    ServiceRequest(params={"id": str(i)}),
                    timeout_s=5,
                    service="content",
                )
                for i in range(20)
            )
        )
    assert sorted(results) == sorted(str(i) for i in range(20))


async def test_instance_checks_answer_on_own_subject(
    nats_server: ManagedServer, namespace: str
) -> None:
    async def database_ok() -> CheckResult:
        return CheckResult(status="ok", critical=True)

    runtime = ServiceRuntime("content", make_settings(nats_server, namespace))
    runtime.add_check("database", database_ok, critical=True)
    async with runtime:
        reply = await runtime.client.request(
            Subjects(namespace).instance_checks(runtime.micro_id), b"", timeout=1
        )
    report = CheckReport.decode(reply.data)
    assert report.checks["database"].status == "ok"
    assert report.service == "content"


async def test_request_while_disconnected_fails_at_once(namespace: str) -> None:
    from portfolio_shared.testing.servers import start_nats

    server = start_nats(prefer_env=False)
    disconnected = asyncio.Event()

    async def on_disconnected() -> None:
        disconnected.set()

    client = await connect_nats(server.url, name="test", on_disconnected=on_disconnected)
    try:
        server.stop_process_only()
        await asyncio.wait_for(disconnected.wait(), timeout=10)
        with pytest.raises(ServiceUnavailableError, match="message bus is disconnected"):
            # A timeout of a minute: only the connection check can end this quickly.
            await asyncio.wait_for(
                request(
                    client, f"{namespace}.echo", ServiceRequest(), timeout_s=60, service="content"
                ),
                timeout=5,
            )
    finally:
        await client.close()
        server.stop()


async def test_shutdown_answers_routed_requests(nats_server: ManagedServer, namespace: str) -> None:
    runtime = ServiceRuntime("content", make_settings(nats_server, namespace))
    runtime.add_endpoint("echo", f"{namespace}.echo", echo)
    caller = await connect_nats(nats_server.url, name="caller")
    replies = await caller.subscribe(f"{namespace}.replies.*")
    await runtime.__aenter__()

    for number in range(50):
        await caller.publish(
            f"{namespace}.echo",
            ServiceRequest(params={"id": str(number)}).encode(),
            reply=f"{namespace}.replies.{number}",
        )
    # Once flushed, the server has routed every request to this instance.
    await caller.flush()
    await runtime.shutdown()
    answered = []
    for _ in range(50):
        message = await replies.next_msg(timeout=5)
        answered.append(message.subject.rsplit(".", 1)[1])
    await caller.close()

    assert sorted(answered, key=int) == [str(number) for number in range(50)]


async def test_request_in_flight_fails_when_connection_drops(namespace: str) -> None:
    from portfolio_shared.testing.servers import start_nats

    server = start_nats(prefer_env=False)
    handler_started = asyncio.Event()

    async def never_answer(request: ServiceRequest) -> None:
        handler_started.set()
        await asyncio.Event().wait()

    runtime = ServiceRuntime(
        "content", CommonSettings(nats_url=server.url, nats_namespace=namespace)
    )
    runtime.add_endpoint("stuck", f"{namespace}.stuck", never_answer)
    client = None
    try:
        await runtime.__aenter__()
        client = await connect_nats(server.url, name="test")
        pending = asyncio.create_task(
            request(client, f"{namespace}.stuck", ServiceRequest(), timeout_s=60, service="content")
        )
        await asyncio.wait_for(handler_started.wait(), timeout=10)

        server.stop_process_only()

        with pytest.raises(ServiceUnavailableError, match="message bus is disconnected"):
            # A timeout of a minute: only the disconnect can end this quickly.
            await asyncio.wait_for(pending, timeout=10)
    finally:
        if client is not None:
            await client.close()
        await runtime.client.close()
        server.stop()
