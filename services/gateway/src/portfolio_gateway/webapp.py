"""The reference web page (plain HTML, CSS and JavaScript), served under ``/app/``.

The files live outside the Python package, in the folder named by ``WEB_ROOT``.
When it is unset, that is the repository's ``web/`` folder beside the workspace;
the container image sets it to the folder it copies. The page calls the API on
its own origin, so it needs no CORS. A copy served elsewhere sets its API base
in the page instead (see ``web/js/config.js``).

``webapp_router`` is built at import from the environment; tests and other
callers build their own with ``create_webapp_router``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar.datastructures import CacheControlHeader
from litestar.response import Response
from litestar.static_files import create_static_files_router
from portfolio_shared.logging import get_logger
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from litestar import Request, Router

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "INDEX_FILE",
    "WEBAPP_PATH",
    "WebAppSettings",
    "create_webapp_router",
    "default_web_root",
    "webapp_router",
]

WEBAPP_PATH = "/app"
"""URL path the page is served under."""

INDEX_FILE = "index.html"
"""The page itself; ``/app`` and ``/app/`` redirect to it."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Policy for the page's files when nothing upstream set one: own files only, no inline code."""

_REPOSITORY_WEB_ROOT = Path(__file__).resolve().parents[4] / "web"
"""``web/`` of the repository when the gateway runs from the source tree (a workspace install)."""

_logger = get_logger("gateway.webapp")


class WebAppSettings(BaseSettings):
    """Location of the page's files."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    web_root: Path | None = None
    """Folder holding ``index.html`` and its assets (``WEB_ROOT``); unset means the
    repository's ``web/`` folder, or ``./web`` when the gateway runs from an install."""


def default_web_root(settings: WebAppSettings | None = None) -> Path:
    """Return ``WEB_ROOT`` if set, else the first of the repository's ``web/`` and ``./web`` that exists."""
    configured = (settings or WebAppSettings()).web_root
    if configured is not None:
        return configured.resolve()
    for candidate in (_REPOSITORY_WEB_ROOT, Path.cwd() / "web"):
        if (candidate / INDEX_FILE).is_file():
            return candidate
    return _REPOSITORY_WEB_ROOT


def _redirect_to_index(request: Request[Any, Any, Any]) -> Response[bytes] | None:
    """Send ``/app`` and ``/app/`` to ``/app/index.html``.

    The page's assets are relative URLs, which resolve under ``/app/`` only when
    the address ends in a slash. The gateway drops trailing slashes before
    routing, so the folder URL always redirects to the file instead.
    """
    if request.scope["path"].rstrip("/") != WEBAPP_PATH:
        return None
    location = f"{WEBAPP_PATH}/{INDEX_FILE}"
    query = request.scope.get("query_string") or b""
    if query:
        location += "?" + query.decode("latin-1")
    return Response(
        content=b"", status_code=307, media_type="text/plain", headers={"Location": location}
    )


async def _add_security_policy(response: Response[Any]) -> Response[Any]:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


def create_webapp_router(web_root: Path) -> Router:
    """Build a router serving the files of ``web_root`` under ``/app/``.

    Browsers revalidate them on every load (``Cache-Control: no-cache`` with an
    ETag). Anything that is not a file inside ``web_root`` is a 404."""
    if not (web_root / INDEX_FILE).is_file():
        _logger.warning("web page index not found, so /app/ returns 404", web_root=str(web_root))
    return create_static_files_router(
        path=WEBAPP_PATH,
        directories=[web_root],
        # html_mode adds the route of the folder itself, which the hook redirects.
        html_mode=True,
        name="webapp",
        before_request=_redirect_to_index,
        after_request=_add_security_policy,
        cache_control=CacheControlHeader(no_cache=True),
        include_in_schema=False,
    )


webapp_router: Router = create_webapp_router(default_web_root())
"""The page router for the gateway app, from ``WEB_ROOT`` (or the repository's ``web/``)."""
