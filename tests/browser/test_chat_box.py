"""The page's chat box in chromium: replies stream in token by token, and a
rate limit or a failing provider shows a message a visitor can act on."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import pytest
from browser_setup import new_context
from playwright.sync_api import expect
from portfolio_shared.testing.fake_llm import FakeReply

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Locator, Page, Request
    from portfolio_shared.testing.fake_llm import FakeLlm
    from stack import Stack


def ask(page: Page, question: str) -> None:
    page.get_by_role("textbox", name="Your question").fill(question)
    page.get_by_role("button", name="Send").click()


def last_answer(page: Page) -> Locator:
    return page.locator(".chat__message--assistant .chat__text").last


def open_chat(page: Page, gateway_url: str) -> None:
    page.goto(f"{gateway_url}/app/")
    expect(page.locator("#sections section").first).to_be_visible()


def test_first_token_is_shown_before_the_provider_finishes(
    page: Page, page_stack: Stack, fresh_provider: FakeLlm
) -> None:
    gate = threading.Event()
    fresh_provider.script(FakeReply.reply_text("Maya builds calm systems.", gate=gate))
    open_chat(page, page_stack.gateway_url)

    ask(page, "What does Maya build?")
    try:
        expect(last_answer(page)).to_have_text("Maya")
        finished_before_release = fresh_provider.completed
    finally:
        gate.set()

    assert finished_before_release == 0


def test_streamed_answer_ends_with_the_full_reply(
    page: Page, page_stack: Stack, fresh_provider: FakeLlm
) -> None:
    fresh_provider.script(FakeReply.reply_text("Maya sails on the west coast."))
    open_chat(page, page_stack.gateway_url)

    ask(page, "What does Maya do for fun?")

    expect(last_answer(page)).to_have_text("Maya sails on the west coast.")


def test_answer_is_marked_busy_only_while_it_streams(
    page: Page, page_stack: Stack, fresh_provider: FakeLlm
) -> None:
    gate = threading.Event()
    fresh_provider.script(FakeReply.reply_text("One two three.", gate=gate))
    open_chat(page, page_stack.gateway_url)
    answer = page.locator(".chat__message--assistant").last

    ask(page, "Count to three.")
    expect(answer).to_have_attribute("aria-busy", "true")
    gate.set()

    expect(answer).not_to_have_attribute("aria-busy", "true")


def test_stop_button_cancels_the_provider_call(
    page: Page, page_stack: Stack, fresh_provider: FakeLlm
) -> None:
    gate = threading.Event()
    fresh_provider.script(FakeReply.reply_text("This answer never finishes.", gate=gate))
    open_chat(page, page_stack.gateway_url)
    ask(page, "Tell me everything.")
    expect(last_answer(page)).to_have_text("This")

    page.get_by_role("button", name="Stop").click()
    try:
        fresh_provider.wait_for_disconnects(1)
    finally:
        gate.set()

    assert fresh_provider.disconnects == 1


def test_stopped_answer_keeps_its_streamed_text(
    page: Page, page_stack: Stack, fresh_provider: FakeLlm
) -> None:
    gate = threading.Event()
    fresh_provider.script(FakeReply.reply_text("Partial answer here.", gate=gate))
    open_chat(page, page_stack.gateway_url)
    ask(page, "Start answering.")
    expect(last_answer(page)).to_have_text("Partial")

    try:
        page.get_by_role("button", name="Stop").click()
        expect(last_answer(page)).to_have_text("Partial …")
    finally:
        gate.set()


def test_second_question_sends_the_session_of_the_first(
    page: Page, page_stack: Stack, fresh_provider: FakeLlm
) -> None:
    fresh_provider.script(FakeReply.reply_text("First."), FakeReply.reply_text("Second."))
    chat_bodies: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/chat"):
            chat_bodies.append(request.post_data_json or {})

    page.on("request", record)
    open_chat(page, page_stack.gateway_url)

    ask(page, "Remember the word heron.")
    expect(last_answer(page)).to_have_text("First.")
    ask(page, "Which word was it?")
    expect(last_answer(page)).to_have_text("Second.")

    assert [("sessionId" in body) for body in chat_bodies] == [False, True]
    assert chat_bodies[0]["visitorId"] == chat_bodies[1]["visitorId"]


def ask_until_rate_limited(page: Page, attempts: int = 3) -> str:
    """Ask until the alert shows, and return the last question.

    The limited replica's bucket allows one message, so this takes one or two questions."""
    alert = page.get_by_role("alert")
    for attempt in range(attempts):
        question = f"Question number {attempt + 1}"
        ask(page, question)
        expect(page.locator(".chat__message--streaming")).to_have_count(0)
        if alert.is_visible():
            return question
    raise AssertionError(f"no rate-limit message after {attempts} questions")


@pytest.fixture(scope="module")
def rate_limited_page(browser: Browser, limited_gateway_url: str) -> Iterator[tuple[Page, str]]:
    """The page on the one-message gateway replica, after the question that hit the
    limit; returns the page and that question."""
    context = new_context(browser)
    page = context.new_page()
    open_chat(page, limited_gateway_url)
    question = ask_until_rate_limited(page)
    yield page, question
    context.close()


def test_rate_limit_message_gives_the_wait(rate_limited_page: tuple[Page, str]) -> None:
    page, _ = rate_limited_page

    expect(page.get_by_role("alert")).to_have_text(
        re.compile(
            r"^You are sending messages too quickly\. Please wait \d+ seconds? and try again\."
        )
    )


def test_rate_limited_question_is_kept_for_sending_again(
    rate_limited_page: tuple[Page, str],
) -> None:
    page, question = rate_limited_page

    expect(page.get_by_role("textbox", name="Your question")).to_have_value(question)


def test_send_waits_out_the_rate_limit(rate_limited_page: tuple[Page, str]) -> None:
    page, _ = rate_limited_page

    expect(page.get_by_role("button", name="Send")).to_be_disabled()


@pytest.fixture(scope="module")
def failed_answer_page(browser: Browser, page_stack: Stack, provider: FakeLlm) -> Iterator[Page]:
    """The page after a question the provider failed to answer (HTTP 500, no retries)."""
    provider.reset()
    provider.script(FakeReply.error_status(500, "upstream exploded"))
    context = new_context(browser)
    page = context.new_page()
    open_chat(page, page_stack.gateway_url)
    ask(page, "Are you there?")
    expect(page.locator(".chat__message--streaming")).to_have_count(0)
    yield page
    context.close()


def test_failing_provider_shows_that_the_assistant_is_unavailable(
    failed_answer_page: Page,
) -> None:
    expect(failed_answer_page.get_by_role("alert")).to_have_text(
        re.compile(r"^The AI assistant is unavailable right now\. Please try again in ")
    )


def test_failing_provider_leaves_no_empty_answer(failed_answer_page: Page) -> None:
    expect(failed_answer_page.locator(".chat__message--assistant")).to_have_count(0)
