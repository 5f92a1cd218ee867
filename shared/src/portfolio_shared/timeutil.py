"""Timestamps in the contract's form: ISO-8601 UTC with milliseconds and a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_timestamp", "parse_timestamp", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as ``2025-03-01T10:00:00.000Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse a timestamp written by ``format_timestamp`` (or any ISO-8601 string with an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
