"""Security headers on every response, and CORS for the configured origins."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "HTML_CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "CorsPolicy",
]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"origin-agent-cluster", b"?1"),
    (b"strict-transport-security", b"max-age=15552000; includeSubDomains"),
    (b"x-dns-prefetch-control", b"off"),
    (b"x-download-options", b"noopen"),
    (b"x-permitted-cross-domain-policies", b"none"),
    (b"x-xss-protection", b"0"),
)
"""Headers added to every response, whatever its status."""

HTML_CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Content-Security-Policy of HTML responses: the API serves no page that needs to load anything."""

ALLOWED_METHODS = b"GET,POST,PUT,DELETE,PATCH,OPTIONS"
ALLOWED_HEADERS = (
    b"Content-Type,Authorization,X-Request-Id,X-Admin-Key,Idempotency-Key,"
    b"If-Match,If-None-Match,X-Visitor-Id"
)
EXPOSED_HEADERS = b"X-Request-Id,X-Idempotent-Replayed"
PREFLIGHT_MAX_AGE = b"86400"


class CorsPolicy:
    """CORS for a fixed list of origins; with none configured it adds no CORS headers."""

    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(origins)

    @property
    def enabled(self) -> bool:
        return bool(self._origins)

    def response_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Return the headers for an ordinary (non-preflight) response to a request from ``origin``."""
        if not self._origins:
            return []
        headers = [
            (b"vary", b"Origin"),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
        ]
        if origin is not None and origin in self._origins:
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        return headers

    def preflight_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Return the headers of the 204 response to any ``OPTIONS`` request."""
        headers = [
            (b"content-length", b"0"),
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-allow-headers", ALLOWED_HEADERS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
        ]
        if self._origins:
            headers.append((b"vary", b"Origin"))
            headers.append((b"access-control-allow-credentials", b"true"))
            if origin is not None and origin in self._origins:
                headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        return headers
