"""The gateway's outermost HTTP layer, run before Litestar routes a request.

The steps, in order:

1. assign the request id;
2. respond to ``OPTIONS`` preflights (204, never rate limited);
3. normalise the path (case, trailing slash) and serve ``HEAD`` as ``GET``;
4. read the body within ``MAX_BODY_BYTES`` (413) and parse JSON (400);
5. apply feature flags (404);
6. authenticate every ``/api/v1/admin`` path (401 before 404);
7. run the content rate limit (429);
8. serve a public content read (list, bundle, item) without routing, from
   the cache or the content service;
9. else call the app under the per-request deadline (504 if no response has
   started by then; public reads have the same deadline).

Every response, errors included, gets ``X-Request-Id``, the security headers
and CORS headers.

Handlers read what this layer found from ``request.scope["state"]``:
``request_id``, ``client_hash``, ``json_body`` (``{}`` for a non-JSON body),
``actor`` (admin paths), and may add response headers to ``response_headers``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import msgspec
from portfolio_shared.errors import (
    BadRequestError,
    GatewayTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PortfolioError,
)
from portfolio_shared.logging import bind_request_context, get_logger

from portfolio_gateway.auth.admin import ADMIN_KEY_HEADER, ADMIN_PATH_PREFIX
from portfolio_gateway.content.public import (
    RequestFacts,
    public_read,
    serve_cached_read,
    serve_uncached_read,
)
from portfolio_gateway.http.errors import ROUTE_NOT_FOUND, send_error, send_failure
from portfolio_gateway.http.request_id import REQUEST_ID_HEADER, accept_request_id
from portfolio_gateway.http.routes_table import RouteTable
from portfolio_gateway.http.security import (
    HTML_CONTENT_SECURITY_POLICY,
    SECURITY_HEADERS,
    CorsPolicy,
)
from portfolio_gateway.ratelimit import CONTENT_POLICY
from portfolio_gateway.ratelimit.client_ip import bucket_address, client_address, client_hash

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, MutableMapping

    from litestar import Litestar

    from portfolio_gateway.content.public import CachedReply, PublicRead
    from portfolio_gateway.settings import GatewaySettings
    from portfolio_gateway.state import GatewayState

__all__ = ["CHAT_PATH_PREFIX", "CONTENT_PATH_PREFIX", "EdgeLayer", "path_under"]

# Plain ASGI shapes: this layer edits scopes and messages as dictionaries.
Scope: TypeAlias = "MutableMapping[str, Any]"
Message: TypeAlias = "dict[str, Any]"
Receive: TypeAlias = "Callable[[], Awaitable[dict[str, Any]]]"
Send: TypeAlias = "Callable[[dict[str, Any]], Awaitable[None]]"
ASGIApp: TypeAlias = "Callable[[Any, Any, Any], Awaitable[None]]"

log = get_logger("gateway.http")

CONTENT_PATH_PREFIX = "/api/v1/content"
"""Public content routes: every request under it spends a ``content`` rate-limit token."""

CHAT_PATH_PREFIX = "/api/v1/chat"
"""Chat routes: they get ``CHAT_REQUEST_TIMEOUT_MS`` instead of ``REQUEST_TIMEOUT_MS``."""

ADMIN_CHAT_PATH_PREFIX = "/api/v1/admin/chat"

CLIENT_HASH_CACHE_SIZE = 4096
"""Distinct (peer, ``X-Forwarded-For``) pairs whose client hash is remembered."""

REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods whose request body is read and parsed."""

PATH_CACHE_SIZE = 1024
"""Distinct request paths whose canonical form and route facts are remembered."""


def path_under(path: str, prefix: str) -> bool:
    """Return whether ``path`` is ``prefix`` itself or below it (segment-wise)."""
    return path == prefix or path.startswith(prefix + "/")


def _decoded(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).decode("latin-1")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _first_values(scope: Scope) -> dict[bytes, bytes]:
    """Map each request header name to its first value, as ``_header`` finds it."""
    # ``dict`` keeps the last of repeated keys, so the list is read backwards.
    return dict(reversed(scope["headers"]))


@functools.lru_cache(maxsize=256)
def _header_name(name: str) -> bytes:
    """Return a header name as ASGI sends it: lower case, Latin-1 encoded."""
    return name.lower().encode("latin-1")


def _response_headers(
    headers: Iterable[tuple[bytes, bytes]],
    request_id: str,
    cors: list[tuple[bytes, bytes]],
    added: dict[str, str],
) -> list[tuple[bytes, bytes]]:
    """Return the app's response headers without ``X-Powered-By``, then the request id,
    security, ``cors`` and ``added`` headers, and a Content-Security-Policy for an HTML
    response that has none."""
    result: list[tuple[bytes, bytes]] = []
    content_type: bytes | None = None
    has_policy = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"x-powered-by":
            continue
        if lowered == b"content-type":
            if content_type is None:
                content_type = value
        elif lowered == b"content-security-policy":
            has_policy = True
        result.append((name, value))

    result.append((REQUEST_ID_HEADER_BYTES, request_id.encode()))
    result.extend(SECURITY_HEADERS)
    result.extend(cors)
    for text_name, text_value in added.items():
        name = _header_name(text_name)
        if name == b"content-type":
            if content_type is None:
                content_type = text_value.encode("latin-1")
        elif name == b"content-security-policy":
            has_policy = True
        result.append((name, text_value.encode("latin-1")))

    if content_type is not None and content_type.startswith(b"text/html") and not has_policy:
        result.append((b"content-security-policy", HTML_CONTENT_SECURITY_POLICY))
    return result


class _PathFacts(NamedTuple):
    """The edge layer's view of one request path: its canonical form and the rules that apply."""

    canonical: str
    """The path as ``RouteTable.canonical`` spells it."""

    content: bool
    """Under ``CONTENT_PATH_PREFIX``: rate limited, and maybe served from the cache."""

    chat: bool
    """Under ``CHAT_PATH_PREFIX``: ``CHAT_REQUEST_TIMEOUT_MS`` applies."""

    admin: bool
    """Under ``ADMIN_PATH_PREFIX``: the admin key is required."""

    disabled: bool
    """Switched off by a feature flag: 404."""


class _BodyTooLarge(Exception):
    pass


class EdgeLayer:
    """ASGI wrapper around Litestar's own handler (see the module docstring)."""

    def __init__(self, app: ASGIApp, litestar: Litestar, settings: GatewaySettings) -> None:
        self._app = app
        self._litestar = litestar
        self._settings = settings
        self._cors = CorsPolicy(settings.cors_origins)
        self._trusted = settings.trusted_proxy_networks
        self._routes: RouteTable | None = None
        # Parsing addresses costs more than serving a cached response; clients repeat.
        self._client_hash = functools.lru_cache(maxsize=CLIENT_HASH_CACHE_SIZE)(self._hash_client)
        self._path_facts = functools.lru_cache(maxsize=PATH_CACHE_SIZE)(self._find_path_facts)
        self._public_read = functools.lru_cache(maxsize=PATH_CACHE_SIZE)(self._find_public_read)
        # Bound once, because every call through the module's lazy logger proxy binds
        # again. ``create_app`` configures logging before it builds this layer.
        self._log = log.bind()

    def _hash_client(self, peer: str | None, forwarded_for: str | None) -> str:
        address = client_address(peer, forwarded_for, self._trusted)
        return client_hash(bucket_address(address), self._settings.ip_hash_salt)

    def _route_table(self) -> RouteTable:
        if self._routes is None:
            self._routes = RouteTable(route.path for route in self._litestar.routes)
        return self._routes

    def _find_path_facts(self, path: str) -> _PathFacts:
        canonical = self._route_table().canonical(path)
        chat = path_under(canonical, CHAT_PATH_PREFIX)
        admin = path_under(canonical, ADMIN_PATH_PREFIX)
        settings = self._settings
        disabled = (not settings.feature_admin_api and admin) or (
            not settings.feature_ai_chat and (chat or path_under(canonical, ADMIN_CHAT_PATH_PREFIX))
        )
        return _PathFacts(
            canonical=canonical,
            content=path_under(canonical, CONTENT_PATH_PREFIX),
            chat=chat,
            admin=admin,
            disabled=disabled,
        )

    def _find_public_read(self, path: str, query_string: bytes) -> PublicRead | None:
        return public_read(self._gateway(), path, query_string)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        started = time.perf_counter()
        request_headers = _first_values(scope)
        request_id = accept_request_id(_decoded(request_headers.get(REQUEST_ID_HEADER_BYTES)))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        hashed_client = self._client_hash(
            scope["client"][0] if scope.get("client") else None,
            _decoded(request_headers.get(b"x-forwarded-for")),
        )
        state["client_hash"] = hashed_client
        response_headers: dict[str, str] = {}
        state["response_headers"] = response_headers
        bind_request_context(request_id=request_id)

        method = scope["method"]
        origin = _decoded(request_headers.get(b"origin"))
        head_only = method == "HEAD"
        response_started = False
        status_sent = 0
        deadline: asyncio.Timeout | None = None

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started, status_sent
            if message["type"] == "http.response.start":
                response_started = True
                status_sent = message["status"]
                if deadline is not None and not deadline.expired():
                    # A started response (a stream) is bounded by its handler, not by this layer.
                    deadline.reschedule(None)
                cors = [] if method == "OPTIONS" else self._cors.response_headers(origin)
                message = {
                    **message,
                    "headers": _response_headers(
                        message.get("headers", ()), request_id, cors, response_headers
                    ),
                }
            elif message["type"] == "http.response.body" and head_only:
                message = {**message, "body": b""}
            await send(message)

        try:
            if method == "OPTIONS":
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": self._cors.preflight_headers(origin),
                    }
                )
                await send_with_headers({"type": "http.response.body", "body": b""})
                return

            facts = self._path_facts(scope["path"])
            path = facts.canonical
            scope["path"] = path
            scope["raw_path"] = path.encode()
            if head_only:
                scope["method"] = "GET"

            gateway: GatewayState | None = None
            try:
                receive = await self._read_body(scope, receive, state)
                if facts.disabled:
                    raise NotFoundError(ROUTE_NOT_FOUND)
                if facts.admin:
                    await self._authenticate_admin(scope, state, hashed_client)
                if facts.content and self._settings.rate_limiting_enabled:
                    gateway = self._gateway()
                    limit_headers = await gateway.limiter.enforce(CONTENT_POLICY, hashed_client)
                    response_headers.update(limit_headers)
            except PortfolioError as error:
                await send_error(send_with_headers, error, request_id)
                return

            read = (
                self._public_read(path, scope.get("query_string", b""))
                if facts.content and scope["method"] == "GET"
                else None
            )
            if read is not None:
                # Public reads need no routing: the cheapest path through the gateway.
                await self._serve_read(read, path, request_headers, state, send_with_headers)
                return

            timeout_ms = (
                self._settings.chat_request_timeout_ms
                if facts.chat
                else self._settings.request_timeout_ms
            )
            try:
                async with asyncio.timeout(timeout_ms / 1000) as deadline:
                    await self._app(scope, receive, send_with_headers)
            except TimeoutError:
                if response_started:
                    raise
                self._log.warning("request timed out", path=path, timeout_ms=timeout_ms)
                await send_error(
                    send_with_headers,
                    GatewayTimeoutError(f"Request timeout after {timeout_ms}ms"),
                    request_id,
                )
        finally:
            # One line per request costs about as much as serving a cached response,
            # so only server errors are logged above debug level.
            log_request = self._log.warning if status_sent >= 500 else self._log.debug
            log_request(
                "request finished",
                method=method,
                path=scope["path"],
                status=status_sent,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                client_hash=hashed_client,
            )

    async def _serve_read(
        self,
        read: PublicRead,
        path: str,
        request_headers: dict[bytes, bytes],
        state: dict[str, Any],
        send: Send,
    ) -> None:
        """Serve a public content read: a cache hit at once, a miss within ``REQUEST_TIMEOUT_MS``.

        Errors are sent in the contract's shape and logged as Litestar's handlers log them.
        """
        gateway = self._gateway()
        if_none_match = _decoded(request_headers.get(b"if-none-match"))
        try:
            reply = await serve_cached_read(gateway, read, if_none_match)
            if reply is None:
                reply = await self._serve_miss(
                    gateway, read, path, if_none_match, request_headers, state
                )
        except Exception as error:
            await send_failure(send, error, state["request_id"], path)
            return
        status, headers, body = reply
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _serve_miss(
        self,
        gateway: GatewayState,
        read: PublicRead,
        path: str,
        if_none_match: str | None,
        request_headers: dict[bytes, bytes],
        state: dict[str, Any],
    ) -> CachedReply:
        """Return the reply to a cache miss; raises ``GatewayTimeoutError`` past the deadline."""
        facts = RequestFacts(
            request_id=state["request_id"],
            client_hash=state["client_hash"],
            if_none_match=if_none_match,
            user_agent=_decoded(request_headers.get(b"user-agent")),
            visitor_id=_decoded(request_headers.get(b"x-visitor-id")),
        )
        timeout_ms = self._settings.request_timeout_ms
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                return await serve_uncached_read(gateway, read, facts)
        except TimeoutError:
            self._log.warning("request timed out", path=path, timeout_ms=timeout_ms)
            raise GatewayTimeoutError(f"Request timeout after {timeout_ms}ms") from None

    async def _read_body(self, scope: Scope, receive: Receive, state: dict[str, Any]) -> Receive:
        """Read and parse the body; return a ``receive`` that replays it to the app."""
        state["json_body"] = {}
        if scope["method"] not in BODY_METHODS:
            return receive

        limit = self._settings.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError("Request body too large")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError("Request body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if content_type == "application/json" and body.strip():
            try:
                parsed = msgspec.json.decode(body)
            except (msgspec.DecodeError, RecursionError):
                # msgspec raises RecursionError for nesting deeper than it decodes.
                raise BadRequestError("Malformed request body") from None
            if not isinstance(parsed, dict | list):
                raise BadRequestError("Malformed request body")
            state["json_body"] = parsed

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _authenticate_admin(
        self, scope: Scope, state: dict[str, Any], hashed_client: str
    ) -> None:
        gateway = self._gateway()
        state["actor"] = await gateway.auth.authenticate(
            _header(scope, ADMIN_KEY_HEADER.encode()), hashed_client
        )

    def _gateway(self) -> GatewayState:
        gateway: GatewayState = self._litestar.state.gateway
        return gateway
