"""How the browser tests start chromium and where they leave screenshots.

Chromium is Debian's ``/usr/bin/chromium`` (``CHROMIUM_PATH`` overrides it),
installed by ``make browser-deps``; Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

__all__ = ["ARTIFACTS_DIR", "CHROMIUM_FLAGS", "chromium_path", "new_context"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Flags for a quiet, self-contained headless chromium that calls no outside host."""

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
"""Screenshots the tests save (``test-artifacts/`` is ignored by git)."""


def chromium_path() -> str:
    """Return the chromium binary, or raise an error naming the install command."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).exists():
        raise FileNotFoundError(
            f"chromium not found at {path}: run `make browser-deps` (Debian's chromium)"
        )
    return path


def new_context(browser: Browser, *, width: int = 1280, height: int = 900) -> BrowserContext:
    """A context of its own (no shared cookies, storage or cache) with a 15 s wait limit."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    return context
