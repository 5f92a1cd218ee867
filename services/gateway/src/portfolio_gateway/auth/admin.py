"""The ``X-Admin-Key`` check: constant-time, rotation-friendly, brute-force limited.

Every accepted key (``ADMIN_API_KEY`` and each ``ADMIN_API_KEYS`` entry) is
compared, always all of them, as SHA-256 digests with ``hmac.compare_digest``,
so neither the key length nor which key matched shows in the timing. A missing
and a wrong key get the same 401 body.

Each failed attempt spends a token of the client's ``admin_auth`` bucket. Once
the bucket is empty, the client gets 429 before its key is compared, until a
token has refilled. So a guesser learns nothing from requests beyond the limit. Only the key's fingerprint (the first
12 hex digits of its SHA-256) ever reaches logs and history.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from portfolio_shared.contract import Actor
from portfolio_shared.errors import UnauthorizedError
from portfolio_shared.logging import get_logger

from portfolio_gateway.ratelimit import ADMIN_AUTH_POLICY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

    from portfolio_gateway.ratelimit import RateLimiter

__all__ = [
    "ADMIN_KEY_HEADER",
    "ADMIN_PATH_PREFIX",
    "UNAUTHORIZED_MESSAGE",
    "AdminAuthenticator",
    "admin_guard",
    "key_fingerprint",
    "request_actor",
]

log = get_logger("gateway.auth")

ADMIN_KEY_HEADER = "x-admin-key"
"""Request header carrying the admin key (lower case, as ASGI gives it)."""

ADMIN_PATH_PREFIX = "/api/v1/admin"
"""Every path under this prefix needs an admin key, unknown ones included (401 before 404)."""

UNAUTHORIZED_MESSAGE = "Missing or invalid X-Admin-Key header"
"""The one 401 message, whether the key was missing or wrong."""


def key_fingerprint(key: str) -> str:
    """First 12 hex digits of SHA-256 of ``key``: names a key in logs without revealing it."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class AdminAuthenticator:
    """Checks admin keys against the configured ones and limits failed attempts per client."""

    def __init__(self, keys: Sequence[str], limiter: RateLimiter | None) -> None:
        self._keys = [(_digest(key), key_fingerprint(key)) for key in keys if key]
        self._limiter = limiter

    @property
    def configured(self) -> bool:
        """Whether any key is configured (with none, every admin request is refused)."""
        return bool(self._keys)

    def match(self, presented: str | None) -> str | None:
        """Return the fingerprint of the configured key equal to ``presented``, or ``None``."""
        presented_digest = _digest(presented or "")
        matched: str | None = None
        for digest, fingerprint in self._keys:
            if hmac.compare_digest(digest, presented_digest):
                matched = fingerprint
        return matched if presented else None

    async def authenticate(self, presented: str | None, client_hash: str) -> Actor:
        """Return the actor for a valid key; raise 401, or 429 for a client over its limit."""
        if self._limiter is not None:
            # A client out of failed-attempt tokens is refused before its key is looked at.
            await self._limiter.enforce(ADMIN_AUTH_POLICY, client_hash, consume=False)

        fingerprint = self.match(presented)
        if fingerprint is not None:
            return Actor(key_fingerprint=fingerprint, client_hash=client_hash)

        log.warning(
            "admin authentication failed", client_hash=client_hash, key_present=bool(presented)
        )
        if self._limiter is not None:
            await self._limiter.check(ADMIN_AUTH_POLICY, client_hash)
        raise UnauthorizedError(UNAUTHORIZED_MESSAGE)


def request_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """Return the actor the edge layer authenticated for this admin request.

    Raises ``UnauthorizedError`` if the request was not authenticated, so a
    handler mounted outside ``ADMIN_PATH_PREFIX`` by mistake fails closed.
    """
    actor = connection.scope.get("state", {}).get("actor")
    if not isinstance(actor, Actor):
        raise UnauthorizedError(UNAUTHORIZED_MESSAGE)
    return actor


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard for admin handlers: passes only requests with an authenticated actor.

    The edge layer authenticates every path under ``ADMIN_PATH_PREFIX`` before
    routing (so even unknown admin paths get 401); the guard authenticates
    itself when a handler lives elsewhere.
    """
    state = connection.scope.setdefault("state", {})
    if isinstance(state.get("actor"), Actor):
        return
    from portfolio_gateway.state import gateway_state

    gateway = gateway_state(connection)
    client_hash = state.get("client_hash") or "unknown"
    state["actor"] = await gateway.auth.authenticate(
        connection.headers.get(ADMIN_KEY_HEADER), client_hash
    )
