"""Public content routes, served from the response cache.

A fresh cached entry is served without touching NATS. A miss requests the
content service and stores its reply only if no invalidation happened
meanwhile (see ``cache.store``); concurrent misses of one key share that
request (see ``cache.flights``). When the content service or NATS does not
reply, the last cached copy is served marked ``X-Cache: STALE`` (with a
``Warning``). With nothing cached the response is 503. Errors of the content service (400, 404)
are passed on and never cached.
"""

from __future__ import annotations

import functools
import urllib.parse
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath  # noqa: TC002 - Litestar reads handler annotations at runtime
from litestar.response.base import ASGIResponse
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.logging import get_logger

from portfolio_gateway.cache.etag import content_etag, if_none_match_hits
from portfolio_gateway.cache.keys import bundle_key, item_key, list_key
from portfolio_gateway.cache.metrics import CACHE_HITS, CACHE_MISSES, CACHE_STALE_SERVED
from portfolio_gateway.cache.store import CachedResponse
from portfolio_gateway.forwarding import as_http_reply, call_service, service_request
from portfolio_gateway.http.openapi import DataEnvelope, error_responses
from portfolio_gateway.state import gateway_state

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_shared.contract import ServiceRequest
    from prometheus_client import Counter

    from portfolio_gateway.state import GatewayState

__all__ = [
    "LIST_MAX_AGE_S",
    "OBJECT_MAX_AGE_S",
    "CachedReply",
    "cached_reply",
    "public_content_router",
    "serve_from_cache",
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
"""Status, raw headers and body of a response built from a cache entry."""


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


def _respond(
    request: Request[Any, Any, Any], entry: CachedResponse, *, max_age: int, cache_state: str
) -> ASGIResponse:
    # A raw ASGI response: cached bodies are sent as stored, without re-encoding.
    status, headers, body = cached_reply(
        entry,
        max_age=max_age,
        cache_state=cache_state,
        if_none_match=request.headers.get("if-none-match"),
    )
    # Decoded here as Litestar would: its ``encoded_headers`` parameter warns on every call.
    text_headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
    return ASGIResponse(body=body, status_code=status, headers=text_headers)


def _route_key(path: str, query_string: bytes) -> tuple[str | None, int]:
    """Return the cache key and max-age of a canonical public content path (no key if none)."""
    if path == CONTENT_PATH:
        query = dict(urllib.parse.parse_qsl(query_string.decode("latin-1")))
        return list_key(query), LIST_MAX_AGE_S
    if path == CONTENT_PATH + "/bundle":
        return bundle_key(), OBJECT_MAX_AGE_S
    segments = path[len(CONTENT_PATH) + 1 :].split("/")
    if path.startswith(CONTENT_PATH + "/") and len(segments) == 2:
        return item_key(*segments), OBJECT_MAX_AGE_S
    return None, 0


async def serve_from_cache(
    gateway: GatewayState, path: str, query_string: bytes, if_none_match: str | None
) -> CachedReply | None:
    """Serve a public content read from a fresh cache entry, before routing; ``None`` on a miss.

    ``path`` is the canonical path. A miss is left to the route handler, which
    counts it and requests the content service.
    """
    if gateway.invalidation is None or not gateway.invalidation.synced:
        return None
    key, max_age = _route_key(path, query_string)
    if key is None:
        return None
    entry = await gateway.cache.get(key)
    if entry is None or not gateway.cache.is_fresh(entry):
        return None
    _content_series(CACHE_HITS).inc()
    return cached_reply(entry, max_age=max_age, cache_state="HIT", if_none_match=if_none_match)


class _ErrorReply(Exception):
    """A non-200 reply of the content service, passed on to every request that waited for it."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body

    def response(self) -> ASGIResponse:
        return ASGIResponse(
            body=self.body,
            status_code=self.status,
            headers=self.headers,
            media_type="application/json",
        )


async def _fetch(
    request: Request[Any, Any, Any], subject: str, message: Callable[[], ServiceRequest]
) -> CachedResponse:
    """Request the content service and build the cache entry of its 200 reply.

    Raises ``_ErrorReply`` for any other status, and the service's typed errors.
    """
    gateway = gateway_state(request)
    data = await call_service(request, subject, message(), service="content")
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


async def _serve(
    request: Request[Any, Any, Any],
    *,
    key: str | None,
    subject: str,
    message: Callable[[], ServiceRequest],
    max_age: int,
) -> ASGIResponse:
    gateway = gateway_state(request)
    cache = gateway.cache
    synced = gateway.invalidation is not None and gateway.invalidation.synced

    if key is not None and synced:
        entry = await cache.get(key)
        if entry is not None and cache.is_fresh(entry):
            _content_series(CACHE_HITS).inc()
            return _respond(request, entry, max_age=max_age, cache_state="HIT")
    _content_series(CACHE_MISSES).inc()

    try:
        if key is None or not synced:
            entry = await _fetch(request, subject, message)
        else:
            entry = await _fill(request, key=key, subject=subject, message=message)
    except _ErrorReply as error:
        return error.response()
    except ServiceUnavailableError as error:
        stale = await cache.get(key) if key is not None else None
        if stale is None:
            raise
        _content_series(CACHE_STALE_SERVED).inc()
        log.warning("serving stale content", cache_key=key, reason=error.message)
        return _respond(request, stale, max_age=max_age, cache_state="STALE")
    return _respond(request, entry, max_age=max_age, cache_state="MISS")


async def _fill(
    request: Request[Any, Any, Any],
    *,
    key: str,
    subject: str,
    message: Callable[[], ServiceRequest],
) -> CachedResponse:
    """Fetch and store ``key``, sharing the fetch with concurrent misses of the same generation."""
    cache = gateway_state(request).cache
    seen = await cache.generation()

    async def fetch_and_store() -> CachedResponse:
        entry = await _fetch(request, subject, message)
        await cache.store(key, entry, seen)
        return entry

    return await cache.flights.join((key, seen), fetch_and_store)


@get(
    "/",
    summary="List published content",
    description="Published, non-deleted items, optionally of one `type`.",
    responses=_PUBLIC_RESPONSES,
)
async def list_content(request: Request[Any, Any, Any]) -> ASGIResponse:
    query = {key: values[-1] for key, values in request.query_params.dict().items() if values}
    return await _serve(
        request,
        key=list_key(query),
        subject=gateway_state(request).subjects.content_public_list,
        message=lambda: service_request(request),
        max_age=LIST_MAX_AGE_S,
    )


@get(
    "/bundle",
    summary="All published content grouped by type",
    responses=_PUBLIC_RESPONSES,
)
async def content_bundle(request: Request[Any, Any, Any]) -> ASGIResponse:
    return await _serve(
        request,
        key=bundle_key(),
        subject=gateway_state(request).subjects.content_public_bundle,
        message=lambda: service_request(request),
        max_age=OBJECT_MAX_AGE_S,
    )


@get(
    "/{content_type:str}/{slug:str}",
    summary="One published item",
    responses=_PUBLIC_RESPONSES,
)
async def content_item(
    request: Request[Any, Any, Any], content_type: FromPath[str], slug: FromPath[str]
) -> ASGIResponse:
    return await _serve(
        request,
        key=item_key(content_type, slug),
        subject=gateway_state(request).subjects.content_public_item,
        message=lambda: service_request(request, params={"type": content_type, "slug": slug}),
        max_age=OBJECT_MAX_AGE_S,
    )


public_content_router = Router(
    path=CONTENT_PATH,
    route_handlers=[list_content, content_bundle, content_item],
    tags=["content"],
)
