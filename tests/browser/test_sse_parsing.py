"""The page's Server-Sent Events reader (``web/js/sse.js``), run in chromium on
byte chunks cut at awkward places, as a network delivers them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from browser_setup import new_context

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page
    from static_site import StaticSite

READ_EVENTS = """
async (chunks) => {
  const { readServerSentEvents } = await import("./js/sse.js");
  const body = new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new Uint8Array(chunk));
      controller.close();
    },
  });
  const events = [];
  for await (const event of readServerSentEvents(body)) events.push(event);
  return events;
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


def read_events(page: Page, chunks: list[bytes]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate(READ_EVENTS, [list(chunk) for chunk in chunks])
    return events


def test_events_split_across_chunks_arrive_whole(module_page: Page) -> None:
    stream = b'event: token\ndata: {"text": "Hel"}\n\nevent: token\ndata: {"text": "lo"}\n\n'
    chunks = [stream[index : index + 7] for index in range(0, len(stream), 7)]

    events = read_events(module_page, chunks)

    assert events == [
        {"event": "token", "data": '{"text": "Hel"}'},
        {"event": "token", "data": '{"text": "lo"}'},
    ]


def test_crlf_split_between_chunks_ends_one_line(module_page: Page) -> None:
    events = read_events(module_page, [b"event: done\r", b"\ndata: {}\r", b"\n\r\n"])

    assert events == [{"event": "done", "data": "{}"}]


def test_multibyte_character_split_between_chunks_is_decoded(module_page: Page) -> None:
    encoded = 'data: {"text": "café ☕"}\n\n'.encode()
    cut = encoded.index("☕".encode()) + 1

    events = read_events(module_page, [encoded[:cut], encoded[cut:]])

    assert events == [{"event": "message", "data": '{"text": "café ☕"}'}]


def test_comments_and_unknown_fields_are_ignored(module_page: Page) -> None:
    stream = b": keep-alive\nid: 7\nretry: 100\nevent: token\nfoo: bar\ndata: x\n\n"

    events = read_events(module_page, [stream])

    assert events == [{"event": "token", "data": "x"}]


def test_data_lines_of_one_event_join_with_newlines(module_page: Page) -> None:
    events = read_events(module_page, [b"data: first\ndata:second\n\n"])

    assert events == [{"event": "message", "data": "first\nsecond"}]


def test_event_without_closing_blank_line_is_dropped(module_page: Page) -> None:
    events = read_events(module_page, [b"data: complete\n\ndata: cut off"])

    assert events == [{"event": "message", "data": "complete"}]
