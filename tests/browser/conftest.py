"""Fixtures of the browser tests: Debian's chromium driven by Playwright, the
reference page on other origins, and one running system that every browser
test shares (started once, stopped at the end of the session).

Each test gets a fresh browser context (no shared cookies, storage or cache);
a failing test leaves a screenshot in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).parent))

from browser_setup import ARTIFACTS_DIR, CHROMIUM_FLAGS, chromium_path, new_context
from portfolio_shared.testing.fake_llm import FakeLlm
from portfolio_shared.testing.servers import free_port
from stack import Stack, StackOptions
from static_site import StaticSite

if TYPE_CHECKING:
    from collections.abc import Iterator

    from portfolio_shared.testing.servers import ManagedServer

CHAT_RATE_LIMIT_CAPACITY = 100
"""Chat bucket of the main gateway: more messages than all browser tests send."""

CHAT_RATE_LIMIT_REFILL_RATE = "0.01"
"""Chat bucket refill of the rate-limited gateway replica: one message per 100 s, so
once empty it stays empty for the rest of the test session."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium per test module (Playwright's launch gives it a fresh profile)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=list(CHROMIUM_FLAGS)
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a context of its own; a failing test leaves a screenshot behind."""
    context = new_context(browser)
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(ARTIFACTS_DIR / f"failed-{request.node.name}.png"))
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture(scope="session")
def allowed_site() -> Iterator[StaticSite]:
    """The page on an origin listed in the stack's ``CORS_ORIGINS``."""
    with StaticSite() as site:
        yield site


@pytest.fixture(scope="session")
def other_site() -> Iterator[StaticSite]:
    """The page on an origin the stack does not allow."""
    with StaticSite() as site:
        yield site


@pytest.fixture(scope="session")
def offline_site() -> Iterator[StaticSite]:
    """The page with an API base where nothing listens, for testing its modules alone."""
    with StaticSite(api_base=f"http://127.0.0.1:{free_port()}") as site:
        yield site


@pytest.fixture(scope="session")
def provider() -> Iterator[FakeLlm]:
    """The fake LLM provider of the browser tests' stack."""
    with FakeLlm() as fake:
        yield fake


@pytest.fixture(scope="session")
def page_stack(
    nats_server: ManagedServer,
    tmp_path_factory: pytest.TempPathFactory,
    provider: FakeLlm,
    allowed_site: StaticSite,
    other_site: StaticSite,
) -> Iterator[Stack]:
    """Start content, chat, health and a gateway with sample content and the fake provider.

    ``allowed_site`` is in ``CORS_ORIGINS``. Provider calls fail at once (no
    retries), so an LLM error reaches the page without waiting."""
    options = StackOptions(
        nats_url=nats_server.url,
        data_dir=tmp_path_factory.mktemp("browser-stack"),
        llm_base_url=provider.base_url,
        env={
            "CORS_ORIGINS": allowed_site.origin,
            "LLM_MAX_RETRIES": "0",
            "RATE_LIMIT_CAPACITY": str(CHAT_RATE_LIMIT_CAPACITY),
        },
    )
    with Stack(options) as stack:
        stack.start_all()
        allowed_site.api_base = stack.gateway_url
        other_site.api_base = stack.gateway_url
        yield stack


@pytest.fixture(scope="session")
def limited_gateway_url(page_stack: Stack) -> str:
    """Start a second gateway replica whose chat bucket allows one message (in its own memory)."""
    page_stack.start(
        "gateway",
        replica=1,
        env={
            "RATE_LIMIT_CAPACITY": "1",
            "RATE_LIMIT_REFILL_RATE": CHAT_RATE_LIMIT_REFILL_RATE,
        },
    )
    return page_stack.gateway_url_of(1)


@pytest.fixture
def fresh_provider(provider: FakeLlm) -> FakeLlm:
    """The module's provider with no scripted replies or recorded requests left."""
    provider.reset()
    provider.responder = None
    return provider
