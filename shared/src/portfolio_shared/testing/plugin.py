"""Pytest fixtures for real servers and isolated names on shared ones.

Every test gets its own ``namespace`` (NATS subjects, streams, micro service
names) and ``redis_prefix`` (Redis keys), so runs sharing a server never see
each other's data; keys under the prefix are deleted afterwards.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from portfolio_shared.testing.fake_llm import FakeLlm
from portfolio_shared.testing.servers import ManagedServer, start_nats, start_redis

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@pytest.fixture(scope="session")
def nats_server() -> Iterator[ManagedServer]:
    server = start_nats()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ManagedServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    """A NATS namespace of this test alone."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_prefix(redis_server: ManagedServer) -> AsyncIterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted afterwards."""
    import redis.asyncio as redis_asyncio

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis_asyncio.from_url(redis_server.url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    """A scripted OpenAI-compatible provider on 127.0.0.1 (see ``testing.fake_llm``)."""
    server = FakeLlm().start()
    yield server
    server.stop()
