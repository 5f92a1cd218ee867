"""The reference page served by the gateway under /app/, in chromium, against
the real system with its sample portfolio."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from browser_setup import ARTIFACTS_DIR, new_context
from playwright.sync_api import expect

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page
    from stack import Stack


@pytest.fixture(scope="module")
def bundle(page_stack: Stack) -> dict[str, list[dict[str, Any]]]:
    response = httpx.get(f"{page_stack.gateway_url}/api/v1/content/bundle", timeout=10)
    response.raise_for_status()
    data: dict[str, list[dict[str, Any]]] = response.json()["data"]
    return data


def item_titles(bundle: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [str(item["data"]["title"]) for items in bundle.values() for item in items]


@pytest.fixture(scope="module")
def script_errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def rendered(browser: Browser, page_stack: Stack, script_errors: list[str]) -> Iterator[Page]:
    """The page loaded once from the gateway; tests only read it (and may resize it)."""
    context = new_context(browser)
    page = context.new_page()
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(f"{page_stack.gateway_url}/app/")
    expect(page.locator("#sections section").first).to_be_visible()
    yield page
    context.close()


def test_sample_bundle_has_the_core_types(
    bundle: dict[str, list[dict[str, Any]]],
) -> None:
    assert {"about", "project", "experience", "skill"} <= set(bundle)


def test_page_shows_a_section_for_each_content_type(
    rendered: Page, bundle: dict[str, list[dict[str, Any]]]
) -> None:
    types = rendered.locator("#sections > section").evaluate_all("nodes => nodes.map(n => n.id)")

    assert sorted(types) == sorted(f"section-{content_type}" for content_type in bundle)


def test_page_shows_every_published_item_title(
    rendered: Page, bundle: dict[str, list[dict[str, Any]]]
) -> None:
    titles = rendered.locator("#sections h3").all_text_contents()

    assert sorted(titles) == sorted(item_titles(bundle))


def test_page_names_the_owner_from_the_about_item(
    rendered: Page, bundle: dict[str, list[dict[str, Any]]]
) -> None:
    expect(rendered.locator("#site-name")).to_have_text(bundle["about"][0]["data"]["title"])


def test_navigation_links_every_section_and_the_chat(
    rendered: Page, bundle: dict[str, list[dict[str, Any]]]
) -> None:
    targets = rendered.locator("#section-nav a").evaluate_all(
        "links => links.map(link => link.getAttribute('href'))"
    )

    assert sorted(targets) == sorted([*(f"#section-{kind}" for kind in bundle), "#chat"])


def test_page_loads_without_script_errors(rendered: Page, script_errors: list[str]) -> None:
    assert script_errors == []


def test_page_has_one_main_landmark(rendered: Page) -> None:
    expect(rendered.get_by_role("main")).to_have_count(1)


def test_page_has_a_labelled_section_navigation(rendered: Page) -> None:
    expect(rendered.get_by_role("navigation", name="Sections")).to_have_count(1)


def test_chat_input_is_labelled(rendered: Page) -> None:
    expect(rendered.get_by_role("textbox", name="Your question")).to_be_visible()


def test_answer_log_is_a_polite_live_region(rendered: Page) -> None:
    expect(rendered.get_by_role("log", name="Conversation")).to_have_attribute(
        "aria-live", "polite"
    )


REVALIDATE_BUNDLE = """
async () => {
  const response = await fetch("/api/v1/content/bundle", { cache: "no-cache" });
  const body = await response.json();
  return [response.status, Object.keys(body.data).length];
}
"""


class NetworkStatuses:
    """Status lines chromium receives, before its cache turns a 304 into the cached 200.

    Requests and their raw responses are CDP events that may arrive in either
    order, so both are recorded by request id and matched when read.
    """

    def __init__(self, page: Page) -> None:
        self._session = page.context.new_cdp_session(page)
        self._urls: dict[str, str] = {}
        self._statuses: dict[str, int] = {}
        self._session.on("Network.requestWillBeSent", self._on_request)
        self._session.on("Network.responseReceivedExtraInfo", self._on_response)
        self._session.send("Network.enable")

    def _on_request(self, event: dict[str, Any]) -> None:
        self._urls[event["requestId"]] = event["request"]["url"]

    def _on_response(self, event: dict[str, Any]) -> None:
        self._statuses[event["requestId"]] = int(event["statusCode"])

    def of(self, url_suffix: str) -> list[int]:
        """Statuses received so far for URLs ending in ``url_suffix``, in request order."""
        return [
            self._statuses[request_id]
            for request_id, url in self._urls.items()
            if url.endswith(url_suffix) and request_id in self._statuses
        ]

    def close(self) -> None:
        self._session.detach()


def test_bundle_revalidation_gets_not_modified(rendered: Page) -> None:
    network = NetworkStatuses(rendered)

    seen_by_script = rendered.evaluate(REVALIDATE_BUNDLE)
    deadline = time.monotonic() + 10
    while not network.of("/api/v1/content/bundle") and time.monotonic() < deadline:
        rendered.wait_for_timeout(20)
    statuses = network.of("/api/v1/content/bundle")
    network.close()

    assert statuses == [304]
    assert seen_by_script[0] == 200
    assert seen_by_script[1] > 0


@pytest.mark.parametrize(("name", "width"), [("wide", 1280), ("narrow", 390)])
def test_rendered_page_is_saved_as_a_screenshot(rendered: Page, name: str, width: int) -> None:
    rendered.set_viewport_size({"width": width, "height": 900})
    path = ARTIFACTS_DIR / f"portfolio-{name}.png"
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)

    rendered.screenshot(path=str(path), full_page=True)

    assert path.stat().st_size > 10_000


def test_narrow_page_does_not_scroll_sideways(rendered: Page) -> None:
    rendered.set_viewport_size({"width": 360, "height": 800})

    overflow = rendered.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )

    assert overflow == 0
