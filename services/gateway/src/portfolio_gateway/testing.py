"""Test support for the gateway: the app in process against a real NATS, a
scripted stand-in for the content service, and event publishing.

``gateway_client(settings)`` runs the real ``create_app`` (lifespan included:
NATS connection, micro service registration, events stream subscription)
in the test's event loop, with an HTTP client wired to it.
``FakeContentService`` replies on the content subjects as a test scripts it
and records every request. The
fixtures in the gateway's ``tests/conftest.py`` build on these; other
engineers' gateway tests may use them too.
"""

from __future__ import annotations

__all__ = [
    "ADMIN_KEY",
    "FakeContentService",
    "GatewayTestClient",
    "Reply",
    "content_item",
    "gateway_client",
    "gateway_settings",
    "publish_change",
    "running_lifespan",
    "state_of",
]

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import nats
import nats.errors
from portfolio_shared.contract import (
    ChangeKind,
    ContentChanged,
    HttpReply,
    ServiceRequest,
    Subjects,
    encode_error,
    encode_reply,
)
from portfolio_shared.contract.events import encode_event
from portfolio_shared.events_stream import ensure_events_stream
from portfolio_shared.ids import new_id

from portfolio_gateway.app import create_app
from portfolio_gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar
    from nats.aio.msg import Msg
    from portfolio_shared.errors import PortfolioError
    from portfolio_shared.nats_client import NatsClient

    from portfolio_gateway.state import GatewayState

PROBE_HEADER = "Fake-Probe"
"""Header of the requests ``FakeContentService`` sends itself to see its subjects are routed."""

PROBE_DEADLINE_S = 5.0
"""Maximum wait for a new subscription to receive requests, in seconds."""

ADMIN_KEY = "test-admin-key-0123456789abcdefghijklmnop"
"""The admin key every test gateway accepts (40 characters)."""


def content_item(
    content_type: str = "project", slug: str = "atlas", version: int = 1, **data: Any
) -> dict[str, Any]:
    """Build a content item in the contract's shape."""
    return {
        "id": f"content_{content_type}{slug}"[:29].ljust(29, "x"),
        "type": content_type,
        "slug": slug,
        "data": data or {"title": slug.title()},
        "status": "published",
        "version": version,
        "sortOrder": 0,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "deletedAt": None,
    }


@dataclass
class Reply:
    """Scripted reply of the fake content service on one subject."""

    data: Any = None
    error: PortfolioError | None = None
    gate: asyncio.Event | None = None
    """When set, the reply waits until the event is set."""

    silent: bool = False
    """Never reply (the caller times out)."""


@dataclass
class FakeContentService:
    """Stand-in for the content service: replies as scripted and records the requests."""

    client: NatsClient
    subjects: Subjects
    replies: dict[str, Reply] = field(default_factory=dict)
    received: list[tuple[str, ServiceRequest]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _subscriptions: list[Any] = field(default_factory=list)

    async def start(self) -> None:
        for subject in (
            self.subjects.content_public_list,
            self.subjects.content_public_item,
            self.subjects.content_public_bundle,
            self.subjects.content_admin_list,
            self.subjects.content_admin_get,
            self.subjects.content_admin_create,
            self.subjects.content_admin_update,
            self.subjects.content_admin_delete,
            self.subjects.content_admin_history,
            self.subjects.content_admin_restore,
        ):
            self._subscriptions.append(await self.client.subscribe(subject, cb=self._on_request))
        await self.client.flush()
        await self._wait_until_visible()

    async def _wait_until_visible(self) -> None:
        """Probe each subject from another connection until the server routes to it.

        Measured here: a request sent right after another connection's subscribe
        and flush can still get "no responders" a few times in a few hundred.
        """
        probe = await nats.connect(
            self.client.connected_url.geturl() if self.client.connected_url else ""
        )
        try:
            for subscription in self._subscriptions:
                deadline = asyncio.get_running_loop().time() + PROBE_DEADLINE_S
                while True:
                    try:
                        await probe.request(
                            subscription.subject, b"", timeout=1, headers={PROBE_HEADER: "1"}
                        )
                        break
                    except nats.errors.NoRespondersError:
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(0.005)
        finally:
            await probe.close()

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions.clear()
        await self.client.flush()

    def answer(
        self,
        subject: str,
        body: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        replayed: bool = False,
        error: PortfolioError | None = None,
        gate: asyncio.Event | None = None,
        silent: bool = False,
    ) -> None:
        """Script the reply on ``subject``: an ``HttpReply`` with ``body``, or ``error``."""
        data = HttpReply(
            status=status, body=body, headers=headers or {}, replayed=replayed
        ).to_data()
        self.replies[subject] = Reply(data=data, error=error, gate=gate, silent=silent)

    def requests_on(self, subject: str) -> list[ServiceRequest]:
        return [request for seen, request in self.received if seen == subject]

    async def _on_request(self, msg: Msg) -> None:
        asyncio.get_running_loop().create_task(self._answer(msg))

    async def _answer(self, msg: Msg) -> None:
        if msg.headers and msg.headers.get(PROBE_HEADER):
            await msg.respond(b"")
            return
        self.received.append((msg.subject, ServiceRequest.decode(msg.data)))
        self.arrived.set()
        reply = self.replies.get(msg.subject, Reply(data=HttpReply(body={"data": []}).to_data()))
        if reply.silent:
            return
        if reply.gate is not None:
            await reply.gate.wait()
        payload = encode_error(reply.error) if reply.error else encode_reply(reply.data)
        await msg.respond(payload)


def gateway_settings(nats_url: str, namespace: str, **overrides: Any) -> GatewaySettings:
    """Settings of a test gateway: no Redis unless asked, generous limits, the test admin key."""
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "nats_namespace": namespace,
        "redis_url": None,
        "admin_api_key": ADMIN_KEY,
        "log_format": "console",
        "log_level": "WARNING",
        "nats_request_timeout_ms": 5_000,
        "content_rate_limit_capacity": 10_000,
        "content_rate_limit_refill_rate": 1_000.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)


class GatewayTestClient(httpx.AsyncClient):
    """An HTTP client wired straight to an in-process gateway app (same event loop)."""

    def __init__(self, app: Litestar, *, client_address: str = "127.0.0.1") -> None:
        super().__init__(
            transport=httpx.ASGITransport(app=app, client=(client_address, 40_000)),  # type: ignore[arg-type]
            base_url="http://gateway.test",
        )
        self.app = app


@contextlib.asynccontextmanager
async def running_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan: startup on enter, shutdown on exit."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: dict[str, Any]) -> None:
        await from_app.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))  # type: ignore[arg-type]
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        task.cancel()
        raise RuntimeError(f"gateway startup failed: {started.get('message')}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


@contextlib.asynccontextmanager
async def gateway_client(
    settings: GatewaySettings, *, client_address: str = "127.0.0.1"
) -> AsyncIterator[GatewayTestClient]:
    """Run the gateway app for ``settings`` in this event loop, lifespan included."""
    app = create_app(settings)
    async with (
        running_lifespan(app),
        GatewayTestClient(app, client_address=client_address) as client,
    ):
        yield client


def state_of(client: GatewayTestClient) -> GatewayState:
    state: GatewayState = client.app.state.gateway
    return state


async def publish_change(
    nats_url: str,
    subjects: Subjects,
    item: dict[str, Any],
    *,
    change: ChangeKind = ChangeKind.UPDATED,
    previous_slug: str | None = None,
) -> int:
    """Publish a ``ContentChanged`` for ``item`` to the events stream; return its sequence."""
    event = ContentChanged(
        event_id=new_id("evt"),
        content_id=item["id"],
        content_type=item["type"],
        slug=item["slug"],
        version=item["version"],
        change=change,
        status=item["status"],
        occurred_at="2026-01-01T00:00:00.000Z",
        previous_slug=previous_slug,
    )
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await ensure_events_stream(js, subjects)
        ack = await js.publish(
            subjects.content_changed, encode_event(event), headers={"Nats-Msg-Id": event.event_id}
        )
    finally:
        await client.drain()
    return int(ack.seq)
