"""OpenAPI pieces every route shares: the error body schema and the error responses a route documents."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from portfolio_shared.errors import ErrorCode  # noqa: TC002 - msgspec reads the annotation at runtime

__all__ = ["DataEnvelope", "ErrorBody", "ErrorDetail", "SuccessBody", "error_responses"]


class ErrorDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Description of a failure, in a form a client can act on."""

    code: ErrorCode
    """Machine-readable code, e.g. ``NOT_FOUND`` or ``VALIDATION_ERROR``."""

    message: str
    requestId: str
    """Equal to the response's ``X-Request-Id``."""

    fields: dict[str, list[str]] | msgspec.UnsetType = msgspec.UNSET
    """Per-field messages of a ``VALIDATION_ERROR``; the key is a dotted path or ``_root``."""

    retryAfter: int | None = None
    """Seconds to wait, only on 429."""


class ErrorBody(msgspec.Struct):
    """The body of every error response."""

    error: ErrorDetail


class DataEnvelope(msgspec.Struct):
    """A success body: the value under ``data``."""

    data: Any


class SuccessBody(msgspec.Struct):
    """The bare success body of a delete."""

    success: bool


_DESCRIPTIONS = {
    400: "Malformed body, or invalid parameters (VALIDATION_ERROR / BAD_REQUEST)",
    401: "Missing or invalid X-Admin-Key (UNAUTHORIZED)",
    404: "No such route or resource (NOT_FOUND)",
    409: "Conflict with stored state (CONFLICT)",
    412: "If-Match does not match the stored version (PRECONDITION_FAILED)",
    413: "Body over the size limit (PAYLOAD_TOO_LARGE)",
    429: "Rate limit exceeded; see Retry-After (RATE_LIMIT_EXCEEDED)",
    500: "Unexpected failure (INTERNAL_SERVER_ERROR)",
    502: "The LLM provider failed (LLM_ERROR)",
    503: "A service or dependency is unavailable (SERVICE_UNAVAILABLE)",
    504: "The request ran past its deadline (REQUEST_TIMEOUT)",
}

COMMON_ERROR_STATUSES = (400, 413, 500, 503, 504)
"""Statuses any route can return: body parsing, unexpected failures, unavailable services, deadlines."""


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """``responses=`` for a route handler: the common error statuses plus ``statuses``."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=_DESCRIPTIONS.get(status, "Error"),
            generate_examples=False,
        )
        for status in sorted({*COMMON_ERROR_STATUSES, *statuses})
    }
