"""Fixtures of the chat service tests: a chat service on a real NATS beside a stand-in
content service, and the fake provider from ``portfolio_shared.testing``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from portfolio_chat.service import ChatService
from portfolio_chat.settings import ChatSettings
from portfolio_chat.testing import ChatHarness, ContentStandIn, running_content_stand_in
from portfolio_shared.contract import Subjects
from portfolio_shared.nats_client import NatsClient, connect_nats

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from portfolio_shared.testing.fake_llm import FakeLlm
    from portfolio_shared.testing.servers import ManagedServer


@pytest.fixture
async def content_stand_in(
    nats_server: ManagedServer, namespace: str
) -> AsyncIterator[ContentStandIn]:
    async with running_content_stand_in(nats_server.url, namespace) as stand_in:
        yield stand_in


@pytest.fixture
async def start_chat(
    nats_server: ManagedServer,
    namespace: str,
    tmp_path: Path,
    content_stand_in: ContentStandIn,
) -> AsyncIterator[Callable[..., Awaitable[ChatHarness]]]:
    """Start a chat service with settings overrides; everything stops after the test."""
    services: list[ChatService] = []
    clients: list[NatsClient] = []

    async def start(**overrides: Any) -> ChatHarness:
        values: dict[str, Any] = {
            "nats_url": nats_server.url,
            "nats_namespace": namespace,
            "data_dir": tmp_path,
            "llm_retry_base_delay_ms": 0,
            "shutdown_timeout_s": 2,
        }
        values.update(overrides)
        service = ChatService(ChatSettings(**values))
        await service.__aenter__()
        services.append(service)
        client = await connect_nats(nats_server.url, name="chat-test")
        clients.append(client)
        return ChatHarness(service, client, content_stand_in, Subjects(namespace))

    yield start
    for client in clients:
        await client.close()
    for service in services:
        await service.__aexit__(None, None, None)


@pytest.fixture
async def chat(start_chat: Callable[..., Awaitable[ChatHarness]], fake_llm: FakeLlm) -> ChatHarness:
    """A chat service pointed at the fake provider, without retries."""
    return await start_chat(llm_base_url=fake_llm.base_url, llm_max_retries=0)
