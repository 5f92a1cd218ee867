"""A copy of the reference page served from another loopback origin.

``StaticSite`` serves the repository's ``web/`` folder on a port of its own
with a plain ``http.server`` in a thread. It rewrites the ``data-api-base``
attribute of ``index.html`` to ``api_base``, as a site hosted elsewhere would
embed the page, so the gateway's CORS is tested against a real second origin.
The port is bound at construction, so the origin can go into the gateway's
``CORS_ORIGINS`` before the gateway (and so ``api_base``) exists.
"""

from __future__ import annotations

import html
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["WEB_ROOT", "StaticSite"]

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
"""The reference page in the repository."""

_API_BASE_ATTRIBUTE = 'data-api-base=""'
_INDEX_PATHS = {"/", "/index.html"}


class StaticSite:
    """The page on ``http://127.0.0.1:<port>/``, calling the API at ``api_base``."""

    def __init__(self, *, web_root: Path = WEB_ROOT, api_base: str = "") -> None:
        self.web_root = web_root
        self.api_base = api_base
        """Written into ``index.html`` on each request; set it once the gateway runs."""
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(site.web_root), **kwargs)

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in _INDEX_PATHS:
                    super().do_GET()
                    return
                body = site.index_html()
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="static-site", daemon=True
        )

    def index_html(self) -> bytes:
        index = (self.web_root / "index.html").read_text(encoding="utf-8")
        if _API_BASE_ATTRIBUTE not in index:
            raise ValueError(f"index.html has no {_API_BASE_ATTRIBUTE} to rewrite")
        attribute = f'data-api-base="{html.escape(self.api_base)}"'
        return index.replace(_API_BASE_ATTRIBUTE, attribute, 1).encode()

    @property
    def origin(self) -> str:
        """Origin of the site, as the browser sends it in ``Origin``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    def start(self) -> StaticSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> StaticSite:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
