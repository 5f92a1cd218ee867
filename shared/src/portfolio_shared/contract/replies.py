"""The HTTP-shaped reply a service sends when the gateway must set status or headers.

Most endpoints answer ``{"data": <value>}`` and the gateway wraps the value in
its own ``{"data": ...}`` body with status 200. Endpoints that need more (the
content service's public reads and every admin content endpoint) put an
``HttpReply`` under ``data`` instead::

    {"data": {"schema": "http-reply.v1", "status": 201,
              "body": {"data": {...content...}},
              "headers": {"ETag": "\\"v1\\""}, "replayed": false}}

The gateway sends ``body`` verbatim with ``status`` and ``headers``, and adds
``X-Idempotent-Replayed: true`` when ``replayed`` is set (the reply is a stored
answer to an earlier request with the same ``Idempotency-Key``). Other callers
(the chat service's tools) read the content from ``body["data"]`` with
``HttpReply.unwrap``.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["HTTP_REPLY_SCHEMA", "HttpReply"]

HTTP_REPLY_SCHEMA = "http-reply.v1"
"""Value of the ``schema`` tag that marks a reply's data as an ``HttpReply``."""


class HttpReply(msgspec.Struct, kw_only=True, tag=HTTP_REPLY_SCHEMA, tag_field="schema"):
    """Status, headers and body of the HTTP response the gateway should send."""

    status: int = 200
    body: Any
    """The whole HTTP body, e.g. ``{"data": {...}}`` or ``{"success": true}``."""

    headers: dict[str, str] = {}
    """Response headers such as ``ETag``; header names as HTTP spells them."""

    replayed: bool = False
    """True when this is the stored reply of an earlier request with the same idempotency key."""

    def to_data(self) -> dict[str, Any]:
        """Return the plain form handlers return as a reply's ``data``."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    @staticmethod
    def is_http_reply(data: Any) -> bool:
        return isinstance(data, dict) and data.get("schema") == HTTP_REPLY_SCHEMA

    @classmethod
    def from_data(cls, data: Any) -> HttpReply:
        """Rebuild an ``HttpReply`` from a decoded reply's ``data``; raises ``msgspec.ValidationError``."""
        return msgspec.convert(data, type=cls)

    @classmethod
    def unwrap(cls, data: Any) -> Any:
        """Return the value under ``body["data"]`` of an ``HttpReply``, or ``data`` itself otherwise."""
        if cls.is_http_reply(data):
            body = data.get("body")
            if isinstance(body, dict) and "data" in body:
                return body["data"]
            return body
        return data
