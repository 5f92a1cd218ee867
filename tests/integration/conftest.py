"""Fixtures that run the real system: ``stack`` (one of everything) and ``make_stack``.

Every stack gets a fresh NATS namespace and data folder, so stacks share the
session's NATS server (``NATS_URL`` or a bundled one) without crosstalk. With
``redis=True`` a stack uses the session's Redis under a key prefix of its own,
deleted afterwards. The chat service is pointed at the ``fake_llm`` fixture's
server when that fixture exists.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest
from portfolio_shared.testing.fake_llm import FakeLlm
from portfolio_shared.testing.servers import start_nats, start_redis

sys.path.insert(0, str(Path(__file__).parent))

from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from portfolio_shared.testing.servers import ManagedServer


class MakeStack(Protocol):
    def __call__(
        self,
        *,
        replicas: Mapping[str, int] | None = None,
        redis: bool = False,
        env: Mapping[str, str] | None = None,
        llm: bool = True,
        nats_url: str | None = None,
        start: bool = True,
    ) -> Stack: ...


def _fake_llm_url(request: pytest.FixtureRequest) -> str | None:
    """Base URL of the ``fake_llm`` fixture's server, or ``None`` when there is no such fixture."""
    try:
        fake: Any = request.getfixturevalue("fake_llm")
    except pytest.FixtureLookupError:
        return None
    for attribute in ("base_url", "url"):
        value = getattr(fake, attribute, None)
        if isinstance(value, str):
            return value
    return None


def _delete_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def own_nats() -> Iterator[ManagedServer]:
    """A NATS server this test may stop and restart (never the shared one)."""
    server = start_nats(prefer_env=False)
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[ManagedServer]:
    """A Redis server this test may stop, kill and restart (never the shared one)."""
    server = start_redis(prefer_env=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeLlm]:
    """A fake LLM provider shared by the tests of one module."""
    with FakeLlm() as fake:
        yield fake


@pytest.fixture
def make_stack(
    request: pytest.FixtureRequest, nats_server: ManagedServer, tmp_path: Path
) -> Iterator[MakeStack]:
    """Factory of stacks; each is closed (no process left) when the test ends.

    ``replicas`` maps a kind to its replica count (1 when not named, 0 leaves a
    kind out). ``redis`` uses the session's Redis. ``env`` adds variables to
    every process. ``llm`` points chat at the ``fake_llm`` server. ``nats_url``
    replaces the session's NATS with a server the test owns. With
    ``start=False`` the stack is returned with nothing running.
    """
    stacks: list[Stack] = []
    redis_cleanups: list[tuple[str, str]] = []

    def make(
        *,
        replicas: Mapping[str, int] | None = None,
        redis: bool = False,
        env: Mapping[str, str] | None = None,
        llm: bool = True,
        nats_url: str | None = None,
        start: bool = True,
    ) -> Stack:
        redis_url = None
        prefix = ""
        if redis:
            redis_url = request.getfixturevalue("redis_server").url
            prefix = f"test-{secrets.token_hex(6)}:"
            redis_cleanups.append((redis_url, prefix))
        options = StackOptions(
            nats_url=nats_url or nats_server.url,
            data_dir=tmp_path / f"stack-{len(stacks)}",
            replicas=dict(replicas or {}),
            redis_url=redis_url,
            redis_key_prefix=prefix,
            llm_base_url=_fake_llm_url(request) if llm else None,
            env=dict(env or {}),
        )
        stack = Stack(options)
        stacks.append(stack)
        if start:
            stack.start_all()
        return stack

    yield make

    for stack in reversed(stacks):
        stack.close()
    for url, prefix in redis_cleanups:
        _delete_redis_keys(url, prefix)


@pytest.fixture
def stack(make_stack: MakeStack) -> Stack:
    """One replica of each service, memory cache, sample content, fake LLM when available."""
    return make_stack()
