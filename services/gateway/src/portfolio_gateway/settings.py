"""Settings of the gateway, read from the environment and validated at startup.

Every variable maps to the upper-case field name (``GATEWAY_PORT`` to
``gateway_port``), except where an alias is given. A wrong value stops the
gateway with a message naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from portfolio_shared.settings import CommonSettings
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

__all__ = ["MIN_ADMIN_KEY_LENGTH", "GatewaySettings", "parse_strict_bool"]

MIN_ADMIN_KEY_LENGTH = 32
"""Shortest admin key the gateway accepts, in characters."""

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def parse_strict_bool(value: Any) -> bool:
    """Accept ``true``/``false``/``1``/``0`` (any case) or a bool; refuse anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be one of true, false, 1, 0")


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class GatewaySettings(CommonSettings):
    """Variables of the gateway process."""

    gateway_host: str = "127.0.0.1"
    """Address the HTTP server binds to."""

    gateway_port: int = Field(default=8000, ge=0, le=65535)
    """TCP port of the HTTP server."""

    gateway_workers: int = Field(default=1, ge=1, le=64)
    """Number of server workers, each with its own NATS connection. One worker runs in the
    gateway process itself (less memory), more run as child processes."""

    shutdown_grace_s: float = Field(default=2.0, ge=0, le=300)
    """Seconds between SIGTERM and the stop of accepting connections, during which
    ``/api/health/ready`` responds 503 while every request is still served."""

    admin_api_key: str = ""
    """The admin key expected in ``X-Admin-Key``; empty closes the admin API (every call 401)."""

    admin_api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    """More accepted admin keys, comma-separated, so a key can be rotated with no downtime."""

    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Browser origins allowed by CORS, comma-separated; empty turns CORS headers off."""

    request_timeout_ms: int = Field(default=30_000, ge=100, le=600_000)
    """Deadline of one HTTP request before the gateway responds 504, in milliseconds."""

    chat_request_timeout_ms: int = Field(default=60_000, ge=100, le=600_000)
    """Deadline of requests under ``/api/v1/chat``, in milliseconds."""

    admin_request_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    """Deadline of one admin content call to the content service over NATS, in milliseconds
    (public reads use ``NATS_REQUEST_TIMEOUT_MS``)."""

    max_body_bytes: int = Field(default=102_400, ge=1, le=10_000_000)
    """Largest request body accepted, in bytes; a larger one gets 413."""

    rate_limit_capacity: int = Field(default=5, ge=1)
    """Chat token bucket size (burst), in requests."""

    rate_limit_refill_rate: float = Field(default=0.333, gt=0)
    """Chat token bucket refill, in tokens per second."""

    content_rate_limit_capacity: int = Field(default=60, ge=1)
    """Public content token bucket size, in requests."""

    content_rate_limit_refill_rate: float = Field(default=10.0, gt=0)
    """Public content token bucket refill, in tokens per second."""

    admin_auth_rate_limit_capacity: int = Field(default=5, ge=1)
    """Failed admin authentications one client may make in a burst."""

    admin_auth_rate_limit_refill_rate: float = Field(default=0.1, gt=0)
    """Refill of the failed-authentication bucket, in tokens per second."""

    rate_limiting_enabled: bool = Field(
        default=True,
        validation_alias=AliasChoices(
            "RATE_LIMITING", "FEATURE_RATE_LIMITING", "rate_limiting_enabled"
        ),
    )
    """Whether token buckets apply at all (``RATE_LIMITING`` or ``FEATURE_RATE_LIMITING``)."""

    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """Networks (CIDR, comma-separated) of proxies whose ``X-Forwarded-For`` is believed."""

    ip_hash_salt: str = ""
    """Salt of the client address hash used in rate-limit keys, metrics and logs."""

    metrics_bearer_token: str | None = None
    """When set, ``/api/metrics`` requires ``Authorization: Bearer <token>``."""

    cache_ttl_s: float = Field(default=300.0, gt=0, le=86_400)
    """How long a cached public content response is served as fresh, in seconds.
    Event-driven invalidation drops entries earlier; this is the safety net."""

    cache_stale_ttl_s: float = Field(default=86_400.0, ge=0, le=30 * 86_400)
    """How much longer an entry is kept to be served as stale when the content
    service or NATS is unavailable, in seconds."""

    cache_max_entries: int = Field(default=10_000, ge=10)
    """Largest number of entries the in-process memory cache holds."""

    feature_ai_chat: bool = True
    """``FEATURE_AI_CHAT``: the public chat and the admin chat routes."""

    feature_admin_api: bool = True
    """``FEATURE_ADMIN_API``: every ``/api/v1/admin`` route."""

    feature_mcp_server: bool = True
    """``FEATURE_MCP_SERVER``: reserved for the MCP endpoint."""

    feature_audit_log: bool = True
    """``FEATURE_AUDIT_LOG``: one log line per admin action."""

    @field_validator(
        "rate_limiting_enabled",
        "feature_ai_chat",
        "feature_admin_api",
        "feature_mcp_server",
        "feature_audit_log",
        mode="before",
    )
    @classmethod
    def _strict_bool(cls, value: Any) -> bool:
        return parse_strict_bool(value)

    @field_validator("admin_api_keys", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("admin_api_key")
    @classmethod
    def _check_admin_key(cls, value: str) -> str:
        if value and len(value) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_ADMIN_KEY_LENGTH} characters long")
        return value

    @field_validator("admin_api_keys")
    @classmethod
    def _check_admin_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for position, key in enumerate(value, start=1):
            if len(key) < MIN_ADMIN_KEY_LENGTH:
                raise ValueError(
                    f"key {position} must be at least {MIN_ADMIN_KEY_LENGTH} characters long"
                )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or CIDR network") from None
        return value

    @property
    def accepted_admin_keys(self) -> tuple[str, ...]:
        """Every admin key accepted in ``X-Admin-Key``, the primary one first."""
        keys = (
            (self.admin_api_key, *self.admin_api_keys)
            if self.admin_api_key
            else self.admin_api_keys
        )
        return tuple(dict.fromkeys(keys))

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.trusted_proxies)
