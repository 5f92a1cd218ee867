"""Fixtures of the content service tests: an instance on a fresh SQLite file and real NATS,
and a client that calls its endpoints over NATS as the gateway does."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from portfolio_content.app import ContentInstance
from portfolio_content.settings import ContentSettings
from portfolio_shared.contract import HttpReply, ServiceRequest, Subjects
from portfolio_shared.nats_client import NatsClient, connect_nats, request

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from portfolio_shared.testing.servers import ManagedServer


class ContentClient:
    """Calls content endpoints over NATS and decodes replies."""

    def __init__(self, client: NatsClient, subjects: Subjects) -> None:
        self.nats = client
        self.subjects = subjects

    async def call(self, subject: str, **fields: Any) -> Any:
        return await request(
            self.nats, subject, ServiceRequest(**fields), timeout_s=10, service="content"
        )

    async def http(self, subject: str, **fields: Any) -> HttpReply:
        return HttpReply.from_data(await self.call(subject, **fields))

    async def create(self, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
        reply = await self.http(self.subjects.content_admin_create, body=body, **fields)
        item: dict[str, Any] = reply.body["data"]
        return item

    async def update(self, content_id: str, body: dict[str, Any], **fields: Any) -> HttpReply:
        return await self.http(
            self.subjects.content_admin_update, params={"id": content_id}, body=body, **fields
        )

    async def get(self, content_id: str) -> dict[str, Any]:
        reply = await self.http(self.subjects.content_admin_get, params={"id": content_id})
        item: dict[str, Any] = reply.body["data"]
        return item

    async def history(self, content_id: str, **query: str) -> list[dict[str, Any]]:
        reply = await self.http(
            self.subjects.content_admin_history, params={"id": content_id}, query=query
        )
        entries: list[dict[str, Any]] = reply.body["data"]
        return entries


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, timeout_s: float = 20.0, step_s: float = 0.01
) -> bool:
    """Poll ``condition`` until it is true or ``timeout_s`` passes; return its last value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return True
        await asyncio.sleep(step_s)
    return await condition()


def make_settings(
    nats_url: str, namespace: str, data_dir: Path, **overrides: Any
) -> ContentSettings:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "nats_namespace": namespace,
        "data_dir": data_dir,
        "turso_database_url": None,
        "seed_sample_content": False,
        "outbox_poll_interval_ms": 50,
        **overrides,
    }
    return ContentSettings(**values)


@pytest.fixture
def settings(tmp_path: Path, nats_server: ManagedServer, namespace: str) -> ContentSettings:
    return make_settings(nats_server.url, namespace, tmp_path)


@pytest.fixture
async def instance(settings: ContentSettings) -> AsyncIterator[ContentInstance]:
    async with ContentInstance(settings) as running:
        yield running


@pytest.fixture
async def content(
    instance: ContentInstance, nats_server: ManagedServer, namespace: str
) -> AsyncIterator[ContentClient]:
    client = await connect_nats(nats_server.url, name="content-test")
    try:
        yield ContentClient(client, Subjects(namespace))
    finally:
        await client.drain()
