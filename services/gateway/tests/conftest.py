"""Fixtures for gateway tests: the app in process against a real NATS
(``make_gateway``, ``gateway``) and a scripted content service (``fake_content``);
see ``portfolio_gateway.testing``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nats
import pytest
from portfolio_gateway.testing import FakeContentService, gateway_client, gateway_settings
from portfolio_shared.contract import Subjects

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from portfolio_gateway.testing import GatewayTestClient
    from portfolio_shared.testing.servers import ManagedServer


@pytest.fixture
async def fake_content(
    nats_server: ManagedServer, namespace: str
) -> AsyncIterator[FakeContentService]:
    client = await nats.connect(nats_server.url)
    service = FakeContentService(client, Subjects(namespace))
    await service.start()
    yield service
    await client.drain()


@pytest.fixture
def make_gateway(nats_server: ManagedServer, namespace: str) -> Callable[..., Any]:
    """Start a gateway app in process: ``async with make_gateway(**settings) as client``."""

    def make(**overrides: Any) -> Any:
        overrides.setdefault("nats_url", nats_server.url)
        return gateway_client(gateway_settings(namespace=namespace, **overrides))

    return make


@pytest.fixture
async def gateway(make_gateway: Callable[..., Any]) -> AsyncIterator[GatewayTestClient]:
    """A gateway with default test settings."""
    async with make_gateway() as client:
        yield client
