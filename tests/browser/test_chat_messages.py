"""The sentences the chat box shows for failed requests (``describeChatError`` in
``web/js/chat.js``), computed in chromium for each error code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from browser_setup import new_context

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page
    from static_site import StaticSite

DESCRIBE = """
async (details) => {
  const { ApiError } = await import("./js/api.js");
  const { describeChatError } = await import("./js/chat.js");
  return describeChatError(new ApiError(details));
}
"""


@pytest.fixture(scope="module")
def module_page(browser: Browser, offline_site: StaticSite) -> Iterator[Page]:
    """The page loaded once; its modules are imported into it by each test."""
    context = new_context(browser)
    page = context.new_page()
    page.goto(offline_site.url)
    yield page
    context.close()


def describe(page: Page, **details: Any) -> str:
    sentence: str = page.evaluate(DESCRIBE, {"status": 0, "message": "", **details})
    return sentence


@pytest.mark.parametrize(
    ("details", "sentence"),
    [
        (
            {"code": "RATE_LIMIT_EXCEEDED", "retryAfter": 4},
            "You are sending messages too quickly. Please wait 4 seconds and try again.",
        ),
        (
            {"code": "RATE_LIMIT_EXCEEDED", "retryAfter": 1},
            "You are sending messages too quickly. Please wait 1 second and try again.",
        ),
        (
            {"code": "LLM_ERROR", "retryAfter": 25, "message": "Circuit breaker is open"},
            "The AI assistant is unavailable right now. Please try again in 25 seconds.",
        ),
        (
            {"code": "LLM_ERROR", "message": "HTTP 500"},
            "The AI assistant is unavailable right now. Please try again in a minute.",
        ),
        (
            {"code": "SERVICE_UNAVAILABLE"},
            "The chat is unavailable right now. Please try again later.",
        ),
        (
            {"code": "NETWORK_ERROR"},
            "Could not reach the server. Check your connection and try again.",
        ),
        (
            {"code": "VALIDATION_ERROR", "fields": {"message": ["Message is required"]}},
            "Your message was not accepted: Message is required.",
        ),
        (
            {"code": "SOMETHING_NEW", "message": "Session with identifier 'x' not found"},
            "Session with identifier 'x' not found",
        ),
    ],
)
def test_error_code_is_worded_for_the_visitor(
    module_page: Page, details: dict[str, Any], sentence: str
) -> None:
    assert describe(module_page, **details) == sentence
