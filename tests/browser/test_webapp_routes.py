"""How the gateway serves the page's files under /app/ (plain HTTP, no browser),
and where it finds them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from portfolio_gateway.webapp import CONTENT_SECURITY_POLICY, WebAppSettings, default_web_root
from static_site import WEB_ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from stack import Stack


def get(stack: Stack, path: str) -> httpx.Response:
    return httpx.get(f"{stack.gateway_url}{path}", timeout=10, follow_redirects=False)


@pytest.mark.parametrize("path", ["/app", "/app/", "/APP/"])
def test_folder_address_redirects_to_the_index_file(page_stack: Stack, path: str) -> None:
    response = get(page_stack, path)

    assert (response.status_code, response.headers.get("location")) == (307, "/app/index.html")


def test_redirect_keeps_the_query_string(page_stack: Stack) -> None:
    response = get(page_stack, "/app?lang=en")

    assert response.headers.get("location") == "/app/index.html?lang=en"


def test_index_file_is_html(page_stack: Stack) -> None:
    response = get(page_stack, "/app/index.html")

    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_index_file_carries_the_page_security_policy(page_stack: Stack) -> None:
    response = get(page_stack, "/app/index.html")

    assert response.headers.get_list("content-security-policy") == [CONTENT_SECURITY_POLICY]


def test_scripts_are_served_as_javascript(page_stack: Stack) -> None:
    response = get(page_stack, "/app/js/sse.js")

    assert response.headers["content-type"].startswith("text/javascript")


def test_files_are_revalidated_on_every_load(page_stack: Stack) -> None:
    response = get(page_stack, "/app/app.css")

    assert response.headers.get("cache-control") == "no-cache"


def test_missing_file_is_a_not_found_error_body(page_stack: Stack) -> None:
    response = get(page_stack, "/app/js/missing.js")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "NOT_FOUND")


def test_path_outside_the_web_root_is_not_found(page_stack: Stack) -> None:
    response = get(page_stack, "/app/%2e%2e/%2e%2e/pyproject.toml")

    assert response.status_code == 404


def test_web_root_setting_names_the_folder(tmp_path: Path) -> None:
    assert default_web_root(WebAppSettings(web_root=tmp_path)) == tmp_path.resolve()


def test_web_root_defaults_to_the_repository_web_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_ROOT", raising=False)

    assert default_web_root(WebAppSettings()) == WEB_ROOT
