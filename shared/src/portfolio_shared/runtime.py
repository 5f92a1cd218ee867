"""The process host every NATS service runs in.

``ServiceRuntime`` connects to NATS, registers a micro service (discoverable
through ``$SRV.PING``/``INFO``/``STATS``) whose endpoints share a queue group so
replicas split the load, answers this instance's readiness-check and metrics
subjects, and on exit stops taking requests, lets in-flight handlers finish
within ``shutdown_timeout_s`` and drains the connection.

Handlers receive a ``ServiceRequest`` and return the reply's ``data`` or raise a
``PortfolioError``; anything else is logged with its request id and answered
with a generic 500 error, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from nats.micro import add_service
from nats.micro.service import ServiceConfig
from prometheus_client import REGISTRY, Counter, Histogram, generate_latest

from portfolio_shared.contract.messages import (
    CheckReport,
    CheckResult,
    ServiceRequest,
    encode_error,
    encode_reply,
)
from portfolio_shared.contract.subjects import Subjects
from portfolio_shared.errors import PortfolioError
from portfolio_shared.logging import bind_request_context, get_logger
from portfolio_shared.nats_client import REQUEST_ID_HEADER, NatsClient, connect_nats
from portfolio_shared.tracing import extract_context, tracer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.msg import Msg
    from nats.micro.request import Request
    from nats.micro.service import Service

    from portfolio_shared.settings import CommonSettings

__all__ = ["CHECK_DEADLINE_S", "ServiceRuntime"]


log = get_logger("runtime")

NATS_REQUESTS = Counter(
    "nats_requests_total",
    "NATS requests handled by this instance, by endpoint and outcome.",
    ["endpoint", "outcome"],
)
NATS_REQUEST_DURATION = Histogram(
    "nats_request_duration_seconds",
    "Time to handle one NATS request, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

CHECK_DEADLINE_S = 0.5
"""Maximum time one readiness check may take before it is reported as an error."""


@dataclass
class _Check:
    name: str
    critical: bool
    function: Callable[[], Awaitable[CheckResult]]


@dataclass
class ServiceRuntime:
    """Host of one service instance; use as an async context manager."""

    kind: str
    """Service kind: ``content``, ``chat``, ``health`` or ``gateway``."""

    settings: CommonSettings
    version: str = "0.1.0"
    description: str = ""
    subjects: Subjects = field(init=False)
    client: NatsClient = field(init=False)
    instance_id: str = field(init=False, default="")
    _service: Service | None = field(init=False, default=None)
    _endpoints: list[tuple[str, str, Callable[[ServiceRequest], Awaitable[Any]]]] = field(
        init=False, default_factory=list
    )
    _checks: list[_Check] = field(init=False, default_factory=list)
    _in_flight: set[asyncio.Task[None]] = field(init=False, default_factory=set)
    _stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _started_at: float = field(init=False, default_factory=time.monotonic)
    _reconnect_hooks: list[Callable[[], Awaitable[None]]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.subjects = Subjects(self.settings.nats_namespace)

    # Registration (before entering the context)

    def add_endpoint(
        self, name: str, subject: str, handler: Callable[[ServiceRequest], Awaitable[Any]]
    ) -> None:
        """Serve ``subject`` with ``handler`` in this service's queue group."""
        self._endpoints.append((name, subject, handler))

    def add_check(
        self, name: str, function: Callable[[], Awaitable[CheckResult]], *, critical: bool
    ) -> None:
        """Report ``function``'s result under ``checks.<name>`` in readiness reports."""
        self._checks.append(_Check(name, critical, function))

    def track(self, task: asyncio.Task[None]) -> None:
        """Count ``task`` as in-flight work, so shutdown lets it finish before draining NATS
        (for work a handler starts and outlives, such as a streamed chat answer)."""
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def on_reconnected(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` after every NATS reconnect (to resubscribe or catch up)."""
        self._reconnect_hooks.append(hook)

    # Lifecycle

    async def __aenter__(self) -> ServiceRuntime:
        self.client = await connect_nats(
            self.settings.nats_url,
            name=f"{self.subjects.service_name(self.kind)}",
            on_reconnected=self._run_reconnect_hooks,
        )
        self._service = await add_service(
            self.client,
            ServiceConfig(
                name=self.subjects.service_name(self.kind),
                version=self.version,
                description=self.description or f"portfolio {self.kind} service",
                queue_group=self.subjects.service_name(self.kind),
                # ``instance`` lets discovery name the replica as its metrics and
                # checks do; without INSTANCE_ID the micro service id is the name.
                metadata={"kind": self.kind, "instance": self.settings.instance_id or ""},
            ),
        )
        self.instance_id = self.settings.instance_id or self._service.id
        for name, subject, handler in self._endpoints:
            await self._service.add_endpoint(
                name=name, subject=subject, handler=self._dispatcher(name, handler)
            )
        await self.client.subscribe(
            self.subjects.instance_checks(self._service.id), cb=self._answer_checks
        )
        await self.client.subscribe(
            self.subjects.instance_metrics(self._service.id), cb=self._answer_metrics
        )
        await self.client.flush()
        bind_request_context(instance=self.instance_id)
        log.info(
            "service started",
            kind=self.kind,
            instance=self.instance_id,
            endpoints=len(self._endpoints),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    @property
    def micro_id(self) -> str:
        """Id of the micro service registration, used in per-instance subjects."""
        assert self._service is not None
        return self._service.id

    def install_signal_handlers(self) -> None:
        """Make SIGTERM and SIGINT end ``wait_until_stopped``."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_until_stopped(self) -> None:
        await self._stopping.wait()
        log.info("stop requested", kind=self.kind, in_flight=len(self._in_flight))

    async def shutdown(self) -> None:
        """Stop taking requests, finish in-flight ones within the timeout, drain NATS."""
        await self.stop_serving()
        await self.disconnect()

    async def stop_serving(self) -> None:
        """Stop taking requests and finish in-flight ones within the timeout.

        The NATS connection stays open, so a service can still publish what
        its last requests produced (an outbox flush) before ``disconnect``.
        """
        if self._service is not None:
            await _drain_endpoints(self._service)
            await self._service.stop()
            self._service = None
        if self._in_flight:
            _, pending = await asyncio.wait(
                set(self._in_flight), timeout=self.settings.shutdown_timeout_s
            )
            for task in pending:
                task.cancel()
            if pending:
                log.warning("in-flight requests cancelled at shutdown", count=len(pending))

    async def disconnect(self) -> None:
        """Drain and close the NATS connection within the timeout."""
        if not self.client.is_closed:
            try:
                await asyncio.wait_for(
                    self.client.drain(), timeout=self.settings.shutdown_timeout_s
                )
            except (TimeoutError, Exception) as error:
                log.warning("nats drain failed", error=str(error) or type(error).__name__)
                # Closing a connection that is down can fail too; the process is leaving anyway.
                with contextlib.suppress(Exception):
                    await self.client.close()
        log.info("service stopped", kind=self.kind, instance=self.instance_id)

    # Request handling

    def _dispatcher(
        self, name: str, handler: Callable[[ServiceRequest], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[None]]:
        async def dispatch(request: Request) -> None:
            # nats-py runs one subscription's callbacks one after another, so
            # each request gets its own task to let slow handlers overlap.
            task = asyncio.create_task(self._handle(name, handler, request))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

        return dispatch

    async def _handle(
        self, name: str, handler: Callable[[ServiceRequest], Awaitable[Any]], msg: Request
    ) -> None:
        started = time.perf_counter()
        headers = msg.headers or {}
        request_id = headers.get(REQUEST_ID_HEADER)
        bind_request_context(request_id=request_id)
        outcome = "ok"
        with tracer("portfolio.runtime").start_as_current_span(
            f"{self.kind} {name}", context=extract_context(headers)
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", msg.subject)
            try:
                request = ServiceRequest.decode(msg.data)
                payload = encode_reply(await handler(request))
            except PortfolioError as error:
                outcome = error.code.value
                payload = encode_error(error)
            except msgspec.ValidationError as error:
                outcome = "BAD_REQUEST"
                log.warning("request does not match the contract", endpoint=name, error=str(error))
                payload = encode_error(PortfolioError(f"Malformed service request: {error}"))
            except Exception:
                outcome = "INTERNAL_SERVER_ERROR"
                log.exception("request handler failed", endpoint=name, request_id=request_id)
                payload = encode_error(PortfolioError("Internal server error"))
        if msg._msg.reply:  # the micro Request keeps the raw message private
            try:
                await msg.respond(payload)
            except Exception as error:
                log.warning("reply failed", endpoint=name, error=str(error) or type(error).__name__)
        NATS_REQUESTS.labels(name, outcome).inc()
        NATS_REQUEST_DURATION.labels(name).observe(time.perf_counter() - started)

    # Per-instance operations

    async def run_checks(self) -> CheckReport:
        """Run every registered check concurrently, each bounded by ``CHECK_DEADLINE_S``."""

        async def run(check: _Check) -> tuple[str, CheckResult]:
            try:
                result = await asyncio.wait_for(check.function(), timeout=CHECK_DEADLINE_S)
            except TimeoutError:
                result = CheckResult(
                    status="error",
                    critical=check.critical,
                    detail=f"check timed out after {CHECK_DEADLINE_S}s",
                )
            except Exception as error:
                result = CheckResult(
                    status="error",
                    critical=check.critical,
                    detail=str(error) or type(error).__name__,
                )
            result.critical = check.critical
            return check.name, result

        results = await asyncio.gather(*(run(check) for check in self._checks))
        return CheckReport(service=self.kind, instance=self.instance_id, checks=dict(results))

    async def _answer_checks(self, msg: Msg) -> None:
        report = await self.run_checks()
        if msg.reply:
            await msg.respond(report.encode())

    async def _answer_metrics(self, msg: Msg) -> None:
        if msg.reply:
            await msg.respond(generate_latest(REGISTRY))

    async def _run_reconnect_hooks(self) -> None:
        for hook in self._reconnect_hooks:
            try:
                await hook()
            except Exception:
                log.exception("reconnect hook failed", kind=self.kind)


async def _drain_endpoints(service: Any) -> None:
    """Stop the endpoints' subscriptions after the requests already routed to this instance.

    ``Service.stop`` unsubscribes endpoints, which drops requests the server had
    routed here but this client had not yet handed to a handler. Each of their
    callers then waits out its whole deadline. Draining instead unsubscribes,
    waits for the server to flush what it routed, and hands those requests to
    the handlers, whose tasks shutdown then waits for.
    """
    # NOTE: reads private attributes of nats-py 2.16's micro Service and Endpoint;
    # with the endpoint list emptied, ``Service.stop`` still stops the rest.
    endpoints = list(getattr(service, "_endpoints", []))
    for endpoint in endpoints:
        subscription = getattr(endpoint, "_subscription", None)
        if subscription is None:
            continue
        try:
            await subscription.drain()
        except Exception as error:
            log.warning("endpoint drain failed", error=str(error) or type(error).__name__)
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        endpoint._subscription = None
    service._endpoints = []
