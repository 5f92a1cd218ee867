"""The page served by another site: an origin in ``CORS_ORIGINS`` can read
content and chat through the gateway; any other origin cannot read anything."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from playwright.sync_api import expect
from portfolio_shared.testing.fake_llm import FakeReply

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from portfolio_shared.testing.fake_llm import FakeLlm
    from stack import Stack
    from static_site import StaticSite


def test_page_on_an_allowed_origin_renders_the_content(
    page: Page, page_stack: Stack, allowed_site: StaticSite
) -> None:
    page.goto(allowed_site.url)

    expect(page.locator("#section-project h3").first).to_be_visible()


def test_page_on_an_allowed_origin_streams_a_chat_answer(
    page: Page, page_stack: Stack, allowed_site: StaticSite, fresh_provider: FakeLlm
) -> None:
    gate = threading.Event()
    fresh_provider.script(FakeReply.reply_text("Answered across origins.", gate=gate))
    page.goto(allowed_site.url)

    page.get_by_role("textbox", name="Your question").fill("Can you hear me?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".chat__message--assistant .chat__text").last
    try:
        expect(answer).to_have_text("Answered")
    finally:
        gate.set()

    expect(answer).to_have_text("Answered across origins.")


def test_page_on_another_origin_cannot_read_the_content(
    page: Page, page_stack: Stack, other_site: StaticSite
) -> None:
    page.goto(other_site.url)

    expect(page.locator("#content-status-text")).to_have_text(
        "Could not load the portfolio: the server is unreachable or does not allow this site"
        " to read it."
    )


def test_page_on_another_origin_shows_no_sections(
    page: Page, page_stack: Stack, other_site: StaticSite
) -> None:
    page.goto(other_site.url)
    expect(page.get_by_role("button", name="Try again")).to_be_visible()

    expect(page.locator("#sections section")).to_have_count(0)
