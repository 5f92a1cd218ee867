"""The aggregated readiness report: the health service's reply, served by the gateway.

``checks`` maps each part of the system to one short string an operator reads
at a glance: ``"ok"`` or ``"error"``, followed by `` (fallback: memory)`` when
something took over for the part. ``checks.database`` is always present and
always exactly ``"ok"`` or ``"error"``, so ``jq '.checks.database'`` works as
the runbook uses it. ``critical`` lists the parts whose ``error`` makes the
whole report ``unhealthy`` (HTTP 503); an error in any other part makes it
``degraded`` (HTTP 200). ``instances`` holds each instance's own checks, for
finding which replica failed and why.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from portfolio_shared.contract.messages import CheckResult  # noqa: TC001 (msgspec needs it at runtime)

__all__ = [
    "InstanceReadiness",
    "PartStatus",
    "ReadinessReport",
    "ReadinessStatus",
    "overall_status",
    "part_label",
]

ReadinessStatus = Literal["ready", "degraded", "unhealthy"]
PartStatus = Literal["ok", "error"]


def part_label(status: PartStatus, fallback: str | None = None) -> str:
    """Render one part's status: ``ok``, ``error`` or ``error (fallback: memory)``."""
    if fallback:
        return f"{status} (fallback: {fallback})"
    return status


def overall_status(checks: dict[str, str], critical: set[str] | list[str]) -> ReadinessStatus:
    """Apply the readiness rule: a critical part in error is ``unhealthy``, any other
    part in error is ``degraded``, otherwise ``ready``."""
    failing = {name for name, label in checks.items() if label.startswith("error")}
    if failing & set(critical):
        return "unhealthy"
    if failing:
        return "degraded"
    return "ready"


class InstanceReadiness(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One service instance as the health service saw it."""

    service: str
    instance: str
    status: Literal["ok", "error", "unreachable"]
    """``error`` when one of its checks failed; ``unreachable`` when it was discovered
    but did not reply with its checks in time."""

    checks: dict[str, CheckResult] = {}


class ReadinessReport(msgspec.Struct, kw_only=True, rename="camel"):
    """Readiness of the whole system, as served by ``GET /api/health/ready``."""

    status: ReadinessStatus
    checks: dict[str, str]
    critical: list[str]
    """Names of the parts in ``checks`` whose error makes the report ``unhealthy``."""

    instances: list[InstanceReadiness] = []
    checked_at: str | None = None
    """When the health service ran the checks (it caches the report for about a second)."""

    def with_part(
        self, name: str, status: PartStatus, *, critical: bool, fallback: str | None = None
    ) -> ReadinessReport:
        """Return a copy with ``name`` set (an existing error is kept) and the status recomputed."""
        checks = dict(self.checks)
        existing = checks.get(name)
        if existing is None or status == "error" or not existing.startswith("error"):
            checks[name] = part_label(status, fallback)
        names = [*self.critical, name] if critical and name not in self.critical else self.critical
        return msgspec.structs.replace(
            self, checks=checks, critical=names, status=overall_status(checks, names)
        )

    @property
    def http_status(self) -> int:
        return 503 if self.status == "unhealthy" else 200

    @classmethod
    def from_builtins(cls, data: object) -> ReadinessReport:
        """Convert a decoded reply's ``data``; raise ``msgspec.ValidationError`` if it is not one."""
        return msgspec.convert(data, type=cls)
