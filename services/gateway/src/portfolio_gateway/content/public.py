"""Public content reads (list, bundle, item), served from the response cache.

The edge layer serves every public read before routing: ``public_read`` maps
the path to a read, and ``serve_cached_read`` and ``serve_uncached_read``
build its response. The Litestar handlers below declare the routes for the
OpenAPI document and serve a read that reaches them the same way.

A fresh cached entry is served without touching NATS. A miss requests the
content service and stores its reply only if no invalidation happened
meanwhile (see ``cache.store``), and concurrent misses of one key share that
request (see ``cache.flights``). When the content service or NATS does not
reply, the last cached copy is served marked ``X-Cache: STALE`` (with a
``Warning``). With nothing cached the response is 503. Errors of the content
service (400, 404) are passed on and never cached.
"""

from __future__ import annotations

import functools
import urllib.parse
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from litestar import Request, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath  # noqa: TC002 - Litestar reads handler annotations at runtime
from litestar.response.base import ASGIResponse
from portfolio_shared.contract import ServiceRequest
from portfolio_shared.errors import NotFoundError, ServiceUnavailableError
from portfolio_shared.logging import get_logger
from portfolio_shared.nats_client import request as nats_request

from portfolio_gateway.cache.etag import content_etag, if_none_match_hits
from portfolio_gateway.cache.keys import bundle_key, item_key, list_key
from portfolio_gateway.cache.metrics import CACHE_HITS, CACHE_MISSES, CACHE_STALE_SERVED
from portfolio_gateway.cache.store import CachedResponse
from portfolio_gateway.forwarding import as_http_reply
from portfolio_gateway.http.errors import ROUTE_NOT_FOUND, json_headers
from portfolio_gateway.http.openapi import DataEnvelope, error_responses
from portfolio_gateway.state import gateway_state

if TYPE_CHECKING:
    from prometheus_client import Counter

    from portfolio_gateway.state import GatewayState

__all__ = [
    "LIST_MAX_AGE_S",
    "OBJECT_MAX_AGE_S",
    "CachedReply",
    "PublicRead",
    "RequestFacts",
    "cached_reply",
    "public_content_router",
    "public_read",
    "serve_cached_read",
    "serve_public_read",
    "serve_uncached_read",
]

log = get_logger("gateway.content")

LIST_MAX_AGE_S = 60
"""``Cache-Control`` max-age of the public list, in seconds."""

OBJECT_MAX_AGE_S = 300
"""``Cache-Control`` max-age of an item and of the bundle, in seconds."""

CONTENT_PATH = "/api/v1/content"

CACHE_NAME = "content"
"""Value of the ``cache`` label of the cache metrics."""

STALE_WARNING = b'110 - "Response is Stale"'


@functools.cache
def _content_series(metric: Counter) -> Counter:
    """Return ``metric``'s ``cache="content"`` child, created (and exported) at its first use."""
    # Resolved once, because ``labels()`` takes a lock and costs more than ``inc()``.
    return metric.labels(CACHE_NAME)


_CACHE_CONTROL = {
    max_age: f"public, max-age={max_age}".encode() for max_age in (LIST_MAX_AGE_S, OBJECT_MAX_AGE_S)
}

_encoder = msgspec.json.Encoder()

_PUBLIC_RESPONSES = {
    **error_responses(404, 429),
    200: ResponseSpec(
        data_container=DataEnvelope,
        description="The content, with ETag and Cache-Control",
        generate_examples=False,
    ),
    304: ResponseSpec(data_container=None, description="Not modified (If-None-Match matched)"),
}


CachedReply = tuple[int, list[tuple[bytes, bytes]], bytes]
"""Status, raw headers and body of a public read's response."""


def cached_reply(
    entry: CachedResponse, *, max_age: int, cache_state: str, if_none_match: str | None
) -> CachedReply:
    """Build the response for ``entry``: 304 when ``if_none_match`` matches its ETag, else 200."""
    headers = [
        (b"etag", entry.etag.encode()),
        (b"cache-control", _CACHE_CONTROL[max_age]),
        (b"x-cache", cache_state.encode()),
    ]
    if cache_state == "STALE":
        headers.append((b"warning", STALE_WARNING))
    if if_none_match_hits(if_none_match, entry.etag):
        return 304, headers, b""
    headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(entry.body)).encode()))
    return 200, headers, entry.body


class PublicRead(NamedTuple):
    """One public content read, as the route it names: cache key, service subject and request."""

    key: str | None
    """The cache key; ``None`` when the parameters are invalid, so the read is not cached."""

    max_age: int
    subject: str
    params: dict[str, str]
    query: dict[str, str]


def public_read(gateway: GatewayState, path: str, query_string: bytes) -> PublicRead | None:
    """Return the public read a canonical ``path`` names, or ``None`` if it names none.

    The query is read as Litestar reads it (blank values kept, the last of a
    repeated key wins), so the list's cache key is the same on every path.
    """
    subjects = gateway.subjects
    if path == CONTENT_PATH:
        pairs = urllib.parse.parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        query = dict(pairs)
        return PublicRead(list_key(query), LIST_MAX_AGE_S, subjects.content_public_list, {}, query)
    if not path.startswith(CONTENT_PATH + "/"):
        return None
    segments = path[len(CONTENT_PATH) + 1 :].split("/")
    if segments == ["bundle"]:
        return PublicRead(bundle_key(), OBJECT_MAX_AGE_S, subjects.content_public_bundle, {}, {})
    if len(segments) == 2 and all(segments):
        content_type, slug = segments
        return PublicRead(
            item_key(content_type, slug),
            OBJECT_MAX_AGE_S,
            subjects.content_public_item,
            {"type": content_type, "slug": slug},
            {},
        )
    return None


class RequestFacts(NamedTuple):
    """Request details a public read needs: the If-None-Match value and the fields it passes
    on to the content service."""

    request_id: str | None
    client_hash: str | None
    if_none_match: str | None
    user_agent: str | None = None
    visitor_id: str | None = None


async def serve_cached_read(
    gateway: GatewayState, read: PublicRead, if_none_match: str | None
) -> CachedReply | None:
    """Serve ``read`` from a fresh cache entry, or return ``None`` (not counted as a miss)."""
    key = read.key
    if key is None or gateway.invalidation is None or not gateway.invalidation.synced:
        return None
    entry = await gateway.cache.get(key)
    if entry is None or not gateway.cache.is_fresh(entry):
        return None
    _content_series(CACHE_HITS).inc()
    return cached_reply(entry, max_age=read.max_age, cache_state="HIT", if_none_match=if_none_match)


async def serve_public_read(
    gateway: GatewayState, read: PublicRead, facts: RequestFacts
) -> CachedReply:
    """Serve ``read`` from the cache or the content service (see the module docstring).

    Raises the content service's typed errors, and ``ServiceUnavailableError``
    when it does not reply and nothing is cached.
    """
    hit = await serve_cached_read(gateway, read, facts.if_none_match)
    if hit is not None:
        return hit
    return await serve_uncached_read(gateway, read, facts)


async def serve_uncached_read(
    gateway: GatewayState, read: PublicRead, facts: RequestFacts
) -> CachedReply:
    """Serve ``read`` from the content service after a cache miss, counting the miss.

    Raises as ``serve_public_read`` does.
    """
    _content_series(CACHE_MISSES).inc()
    cache = gateway.cache
    key = read.key
    cached = key is not None and gateway.invalidation is not None and gateway.invalidation.synced
    try:
        if cached:
            entry = await _fill(gateway, read, facts)
        else:
            entry = await _fetch(gateway, read, facts)
    except _ErrorReply as error:
        return error.reply()
    except ServiceUnavailableError as error:
        stale = await cache.get(key) if key is not None else None
        if stale is None:
            raise
        _content_series(CACHE_STALE_SERVED).inc()
        log.warning("serving stale content", cache_key=key, reason=error.message)
        return cached_reply(
            stale, max_age=read.max_age, cache_state="STALE", if_none_match=facts.if_none_match
        )
    return cached_reply(
        entry, max_age=read.max_age, cache_state="MISS", if_none_match=facts.if_none_match
    )


class _ErrorReply(Exception):
    """A non-200 reply of the content service, passed on to every request that waited for it."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body

    def reply(self) -> CachedReply:
        return self.status, json_headers(self.body, self.headers), self.body


async def _fetch(gateway: GatewayState, read: PublicRead, facts: RequestFacts) -> CachedResponse:
    """Request the content service and build the cache entry of its 200 reply.

    Raises ``_ErrorReply`` for any other status, and the service's typed errors.
    """
    message = ServiceRequest(
        params=read.params,
        query=read.query,
        user_agent=facts.user_agent,
        visitor_id=facts.visitor_id,
        client_hash=facts.client_hash,
        request_id=facts.request_id,
    )
    data = await nats_request(
        gateway.nats,
        read.subject,
        message,
        timeout_s=gateway.settings.nats_request_timeout_ms / 1000,
        service="content",
    )
    reply = as_http_reply(data)
    body = _encoder.encode(reply.body)
    if reply.status != 200:
        raise _ErrorReply(reply.status, dict(reply.headers), body)
    value = reply.body.get("data") if isinstance(reply.body, dict) else None
    return CachedResponse(
        body=body,
        etag=reply.headers.get("ETag") or content_etag(value, body),
        stored_at=gateway.cache.now(),
    )


async def _fill(gateway: GatewayState, read: PublicRead, facts: RequestFacts) -> CachedResponse:
    """Fetch and store ``read``, sharing the fetch with concurrent misses of the same generation."""
    cache = gateway.cache
    key = read.key
    assert key is not None, "only a read with a cache key is filled"
    seen = await cache.generation()

    async def fetch_and_store() -> CachedResponse:
        entry = await _fetch(gateway, read, facts)
        await cache.store(key, entry, seen)
        return entry

    return await cache.flights.join((key, seen), fetch_and_store)


async def _respond(request: Request[Any, Any, Any]) -> ASGIResponse:
    """Serve a public read that reached Litestar; the edge layer serves them before routing."""
    gateway = gateway_state(request)
    read = public_read(gateway, request.scope["path"], request.scope.get("query_string", b""))
    if read is None:
        raise NotFoundError(ROUTE_NOT_FOUND)
    state = request.scope.get("state", {})
    headers = request.headers
    facts = RequestFacts(
        request_id=state.get("request_id"),
        client_hash=state.get("client_hash"),
        if_none_match=headers.get("if-none-match"),
        user_agent=headers.get("user-agent"),
        visitor_id=headers.get("x-visitor-id"),
    )
    status, raw_headers, body = await serve_public_read(gateway, read, facts)
    # Decoded here as Litestar would: its ``encoded_headers`` parameter warns on every call.
    text_headers = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers
    ]
    return ASGIResponse(body=body, status_code=status, headers=text_headers)


@get(
    "/",
    summary="List published content",
    description="Published, non-deleted items, optionally of one `type`.",
    responses=_PUBLIC_RESPONSES,
)
async def list_content(request: Request[Any, Any, Any]) -> ASGIResponse:
    return await _respond(request)


@get(
    "/bundle",
    summary="All published content grouped by type",
    responses=_PUBLIC_RESPONSES,
)
async def content_bundle(request: Request[Any, Any, Any]) -> ASGIResponse:
    return await _respond(request)


@get(
    "/{content_type:str}/{slug:str}",
    summary="One published item",
    responses=_PUBLIC_RESPONSES,
)
async def content_item(
    request: Request[Any, Any, Any], content_type: FromPath[str], slug: FromPath[str]
) -> ASGIResponse:
    del content_type, slug  # Read from the path by ``public_read``, like every public read.
    return await _respond(request)


public_content_router = Router(
    path=CONTENT_PATH,
    route_handlers=[list_content, content_bundle, content_item],
    tags=["content"],
)
