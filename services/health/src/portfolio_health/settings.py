"""Settings of the health service, read from the environment."""

from __future__ import annotations

from portfolio_shared.settings import CommonSettings
from pydantic import Field

__all__ = ["HealthSettings"]


class HealthSettings(CommonSettings):
    """Deadlines of the health service. Together they keep a readiness reply under
    one second even when an instance hangs."""

    health_discovery_window_ms: int = Field(default=150, ge=10, le=2000)
    """How long discovery gathers ``$SRV.PING`` replies, in milliseconds."""

    health_check_timeout_ms: int = Field(default=600, ge=50, le=5000)
    """How long one instance has to reply with its readiness checks, in milliseconds."""

    health_metrics_timeout_ms: int = Field(default=500, ge=50, le=10_000)
    """How long one instance has to reply to its metrics request, in milliseconds."""

    health_cache_ms: int = Field(default=1000, ge=0, le=60_000)
    """How long an aggregated readiness report is reused, in milliseconds."""

    health_forget_after_s: float = Field(default=60.0, ge=0, le=3600)
    """How long an instance that stopped replying to discovery is still listed as
    unreachable (and as ``instance_up 0`` in metrics), in seconds."""
