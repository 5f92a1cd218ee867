"""One error body everywhere: ``{"error": {"code", "message", "requestId", "fields"?, "retryAfter"?}}``.

Typed errors from ``portfolio_shared.errors`` become their ``HTTP_STATUS``;
Litestar's own exceptions are mapped to the contract's codes (an unknown route
or method is 404 ``Route not found``, never 405); anything else is logged and
returned as a generic 500 without a traceback.

An error may carry response headers in a ``headers`` attribute (a mapping),
e.g. ``Retry-After`` and rate-limit headers on a 429; they are sent as given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE
from portfolio_shared.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PortfolioError,
    ServiceUnavailableError,
    ValidationFailedError,
)
from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from litestar import Request
    from litestar.types import ExceptionHandlersMap

    Send = Callable[[dict[str, Any]], Awaitable[None]]

__all__ = [
    "ROUTE_NOT_FOUND",
    "error_body",
    "error_headers",
    "error_response",
    "exception_handlers",
    "json_headers",
    "request_id_of",
    "send_error",
    "send_failure",
    "send_json",
]

log = get_logger("gateway.errors")

ROUTE_NOT_FOUND = "Route not found"
"""Message of the 404 for a path or method no route serves."""

_encoder = msgspec.json.Encoder()


def request_id_of(request: Request[Any, Any, Any]) -> str:
    """Return the request id the edge layer assigned (``-`` if the edge layer did not run)."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else "-"


def error_body(error: PortfolioError, request_id: str) -> dict[str, Any]:
    """Build the contract's error object for ``error``, with ``requestId``."""
    body: dict[str, Any] = {"code": error.code.value, "message": error.message}
    body["requestId"] = request_id
    if error.fields:
        body["fields"] = error.fields
    if error.retry_after is not None:
        body["retryAfter"] = error.retry_after
    return {"error": body}


def error_headers(error: PortfolioError) -> dict[str, str]:
    """Return the headers an error carries: its own ``headers`` plus ``Retry-After`` when set."""
    headers: dict[str, str] = {}
    extra: Mapping[str, str] | None = getattr(error, "headers", None)
    if extra:
        headers.update({str(name): str(value) for name, value in extra.items()})
    if error.retry_after is not None:
        headers.setdefault("Retry-After", str(error.retry_after))
    return headers


def error_response(error: PortfolioError, request_id: str) -> Response[Any]:
    """Build the Litestar response for ``error``."""
    return Response(
        content=error_body(error, request_id),
        status_code=error.http_status,
        headers=error_headers(error),
        media_type="application/json",
    )


def json_headers(
    payload: bytes, headers: Mapping[str, str] | None = None
) -> list[tuple[bytes, bytes]]:
    """Return the raw ASGI headers of a JSON ``payload``: its type and length, then ``headers``."""
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    for name, value in (headers or {}).items():
        raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return raw_headers


async def send_json(
    send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> None:
    """Write a whole JSON response on a raw ASGI ``send`` (used before routing)."""
    payload = _encoder.encode(body)
    raw_headers = json_headers(payload, headers)
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def send_error(send: Send, error: PortfolioError, request_id: str) -> None:
    """Write ``error`` as a whole response on a raw ASGI ``send``."""
    await send_json(send, error.http_status, error_body(error, request_id), error_headers(error))


async def send_failure(send: Send, error: Exception, request_id: str, path: str) -> None:
    """Log and write any exception raised before routing, as the app's handlers would.

    A ``PortfolioError`` is sent as itself (logged when it is a 5xx); anything
    else is logged with its traceback and sent as a generic 500.
    """
    if isinstance(error, PortfolioError):
        _log_server_error(error, path)
        await send_error(send, error, request_id)
        return
    _log_unexpected(error, path)
    await send_error(send, PortfolioError("Internal server error"), request_id)


def _log_server_error(error: PortfolioError, path: str | None) -> None:
    if error.http_status >= 500:
        log.warning("request failed", code=error.code.value, detail=error.message, path=path)


def _log_unexpected(error: Exception, path: str | None) -> None:
    log.error("unhandled error", error_type=type(error).__name__, path=path, exc_info=error)


def _portfolio_error(request: Request[Any, Any, Any], error: PortfolioError) -> Response[Any]:
    _log_server_error(error, request.scope.get("path"))
    return error_response(error, request_id_of(request))


def _http_exception(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    mapped: PortfolioError
    if isinstance(error, NotFoundException | MethodNotAllowedException):
        mapped = NotFoundError(ROUTE_NOT_FOUND)
    elif isinstance(error, ValidationException):
        mapped = ValidationFailedError("Invalid parameters")
    elif error.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        mapped = PayloadTooLargeError("Request body too large")
    elif error.status_code == 400:
        mapped = BadRequestError("Malformed request body")
    elif error.status_code == 503:
        mapped = ServiceUnavailableError("Service unavailable")
    else:
        log.error(
            "unexpected framework error", status=error.status_code, path=request.scope.get("path")
        )
        mapped = PortfolioError("Internal server error")
    return error_response(mapped, request_id_of(request))


def _portfolio_error_handler(
    request: Request[Any, Any, Any], error: PortfolioError
) -> Response[Any]:
    return _portfolio_error(request, error)


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    _log_unexpected(error, request.scope.get("path"))
    return error_response(PortfolioError("Internal server error"), request_id_of(request))


def exception_handlers() -> ExceptionHandlersMap:
    """Handlers to register on the Litestar app."""
    return {
        PortfolioError: _portfolio_error_handler,
        HTTPException: _http_exception,
        Exception: _unexpected,
    }
