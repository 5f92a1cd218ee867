"""Request and reply schemas of NATS request/reply between services.

A request is a ``ServiceRequest``: the parts of an HTTP request a service needs
(path parameters, query, JSON body, selected headers) plus who is acting. The
gateway parses and size-checks bodies; the owning service validates them, so
each domain rule lives once.

A reply is ``{"data": ...}`` on success or ``{"error": {"code", "message",
"fields"?, "retryAfter"?}}`` on failure, the same envelope as the HTTP API.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from portfolio_shared.errors import PortfolioError, error_from_wire

__all__ = [
    "Actor",
    "CheckReport",
    "CheckResult",
    "ServiceRequest",
    "decode_reply",
    "encode_error",
    "encode_reply",
]

_encoder = msgspec.json.Encoder()


class Actor(msgspec.Struct, kw_only=True, rename="camel"):
    """Who made an admin request, for history and audit lines (never the key itself)."""

    key_fingerprint: str
    """First 12 hex characters of SHA-256 of the admin key used."""

    client_hash: str
    """Salted hash of the client address."""


class ServiceRequest(
    msgspec.Struct,
    kw_only=True,
    rename="camel",
    omit_defaults=True,
    tag="request.v1",
    tag_field="schema",
):
    """One call to a service endpoint, as the gateway received it over HTTP."""

    params: dict[str, str] = {}
    """Path parameters, e.g. ``{"id": "content_…"}`` or ``{"type": …, "slug": …}``."""

    query: dict[str, str] = {}
    """Query parameters (the last value of a repeated one)."""

    body: Any = None
    """Parsed JSON body, or None."""

    if_match: str | None = None
    """``If-Match`` header, for optimistic concurrency."""

    idempotency_key: str | None = None
    visitor_id: str | None = None
    """``X-Visitor-Id`` header of a chat request."""

    user_agent: str | None = None
    client_hash: str | None = None
    actor: Actor | None = None
    request_id: str | None = None
    stream_to: str | None = None
    """Subject to publish streamed chat tokens to; only for the chat stream endpoint."""

    def encode(self) -> bytes:
        return _encoder.encode(self)

    @classmethod
    def decode(cls, payload: bytes) -> ServiceRequest:
        """Decode a request; an empty payload is an empty request."""
        if not payload:
            return cls()
        return msgspec.json.decode(payload, type=cls)


def encode_reply(data: Any) -> bytes:
    """Encode a success reply."""
    return _encoder.encode({"data": data})


def encode_error(error: PortfolioError) -> bytes:
    """Encode an error reply: the code, the message and field errors, never a traceback."""
    return _encoder.encode({"error": error.to_dict()})


def decode_reply(payload: bytes) -> Any:
    """Return the ``data`` of a reply, or raise the typed error it carries.

    A reply that is not a valid envelope raises ``ServiceUnavailableError``:
    the peer is not speaking this contract.
    """
    from portfolio_shared.errors import ServiceUnavailableError

    try:
        envelope = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raise ServiceUnavailableError("A service sent a reply that is not valid JSON") from None
    if isinstance(envelope, dict):
        if "error" in envelope and isinstance(envelope["error"], dict):
            raise error_from_wire(envelope["error"])
        if "data" in envelope:
            return envelope["data"]
    raise ServiceUnavailableError("A service sent a reply without 'data' or 'error'")


class CheckResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The result of one readiness check of one instance."""

    status: Literal["ok", "error"]
    critical: bool
    """Whether this part being down makes the whole system unhealthy (503)."""

    detail: str | None = None
    """What failed, for an operator; never a secret."""

    fallback: str | None = None
    """What took over while the part is down, e.g. ``memory`` for Redis."""


class CheckReport(msgspec.Struct, kw_only=True, tag="checks.v1", tag_field="schema"):
    """Every readiness check of one service instance."""

    service: str
    instance: str
    checks: dict[str, CheckResult]

    def encode(self) -> bytes:
        return _encoder.encode(self)

    @classmethod
    def decode(cls, payload: bytes) -> CheckReport:
        return msgspec.json.decode(payload, type=cls)
