"""Error codes and the exceptions that carry them across NATS and out of the gateway.

A service raises one of these; the service runtime turns it into a wire error
(a code, a message and optional field errors, never a traceback), and the
gateway turns the wire error back into the HTTP status of ``HTTP_STATUS``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "HTTP_STATUS",
    "BadRequestError",
    "ConflictError",
    "ErrorCode",
    "GatewayTimeoutError",
    "LlmError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PortfolioError",
    "PreconditionFailedError",
    "RateLimitExceededError",
    "ServiceUnavailableError",
    "UnauthorizedError",
    "ValidationFailedError",
    "error_from_wire",
]


class ErrorCode(StrEnum):
    """Machine-readable error codes of the HTTP contract, shared by every service."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    LLM_ERROR = "LLM_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RATE_LIMIT_EXCEEDED: 429,
    ErrorCode.INTERNAL_SERVER_ERROR: 500,
    ErrorCode.LLM_ERROR: 502,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.REQUEST_TIMEOUT: 504,
}
"""HTTP status the gateway returns for each error code."""


class PortfolioError(Exception):
    """Base of every error that crosses a service boundary as a code and a message."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_dict(self) -> dict[str, Any]:
        """Return the wire form: ``code``, ``message`` and, when set, ``fields`` and ``retryAfter``."""
        body: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        if self.retry_after is not None:
            body["retryAfter"] = self.retry_after
        return body


# Client errors


class ValidationFailedError(PortfolioError):
    """The request was well-formed but a field broke a rule; ``fields`` names each one."""

    code = ErrorCode.VALIDATION_ERROR


class BadRequestError(PortfolioError):
    """The request could not be parsed at all (malformed JSON, a body of the wrong kind)."""

    code = ErrorCode.BAD_REQUEST


class UnauthorizedError(PortfolioError):
    """The admin key was missing or wrong."""

    code = ErrorCode.UNAUTHORIZED


class NotFoundError(PortfolioError):
    """The route, item, version or session does not exist."""

    code = ErrorCode.NOT_FOUND


class ConflictError(PortfolioError):
    """The change collides with stored state: a taken slug, a reused idempotency key."""

    code = ErrorCode.CONFLICT


class PreconditionFailedError(PortfolioError):
    """The client's ``If-Match`` or ``version`` is not the stored version any more."""

    code = ErrorCode.PRECONDITION_FAILED


class PayloadTooLargeError(PortfolioError):
    """The request body is over the size limit."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class RateLimitExceededError(PortfolioError):
    """The client's token bucket is empty, and ``retry_after`` is the wait before a retry, in seconds."""

    code = ErrorCode.RATE_LIMIT_EXCEEDED


# Server-side and dependency errors


class LlmError(PortfolioError):
    """The LLM provider failed, or the circuit breaker in front of it is open."""

    code = ErrorCode.LLM_ERROR


class ServiceUnavailableError(PortfolioError):
    """A service or dependency did not respond: no NATS responders, a timeout, a database outage."""

    code = ErrorCode.SERVICE_UNAVAILABLE


class GatewayTimeoutError(PortfolioError):
    """The whole HTTP request ran past its deadline."""

    code = ErrorCode.REQUEST_TIMEOUT


_BY_CODE: dict[ErrorCode, type[PortfolioError]] = {
    cls.code: cls
    for cls in (
        ValidationFailedError,
        BadRequestError,
        UnauthorizedError,
        NotFoundError,
        ConflictError,
        PreconditionFailedError,
        PayloadTooLargeError,
        RateLimitExceededError,
        LlmError,
        ServiceUnavailableError,
        GatewayTimeoutError,
    )
}


def error_from_wire(body: dict[str, Any]) -> PortfolioError:
    """Rebuild the typed exception from a wire error; an unknown code becomes a plain 500."""
    try:
        code = ErrorCode(str(body.get("code")))
    except ValueError:
        code = ErrorCode.INTERNAL_SERVER_ERROR
    cls = _BY_CODE.get(code, PortfolioError)
    raw_retry = body.get("retryAfter")
    return cls(
        str(body.get("message", "")),
        fields=body.get("fields") or None,
        retry_after=int(raw_retry) if isinstance(raw_retry, int | float) else None,
    )
