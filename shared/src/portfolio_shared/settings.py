"""Settings every service reads from the environment, validated at startup.

Each service subclasses ``CommonSettings`` with its own fields. A wrong value
stops the process with a message that names the variable and the expected form
(see ``load_settings``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CommonSettings", "SettingsT", "load_settings"]

SettingsT = TypeVar("SettingsT", bound="CommonSettings")


class CommonSettings(BaseSettings):
    """Variables shared by every service. Field names map to upper-case variables."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    nats_url: str = "nats://127.0.0.1:4222"
    """NATS server URL, or a comma-separated list of them for a cluster."""

    nats_namespace: str = Field(default="portfolio", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    """First token of every NATS subject, stream and micro service name, so that
    several stacks (test runs, say) can share one NATS server without crosstalk."""

    nats_request_timeout_ms: int = Field(default=1000, ge=50, le=60_000)
    """Deadline of one NATS request/reply between services, in milliseconds."""

    redis_url: str | None = None
    """Redis URL for shared cache, rate limits and chat sessions; unset means in-process memory."""

    redis_key_prefix: str = ""
    """Prepended to every Redis key (empty by default, so keys are ``content:*``,
    ``ratelimit:*``, ``session:*`` exactly as the runbook lists them)."""

    data_dir: Path = Path("./data")
    """Folder for the embedded SQLite database, the embedded NATS store and backups."""

    environment: str = "development"
    """Deployment name reported by the startup probe (``development``, ``production``)."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    """``json`` writes one JSON object a line; ``console`` is for reading by eye."""

    instance_id: str | None = None
    """Name of this replica in metrics and health checks; a random one when unset."""

    shutdown_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Longest time a service spends finishing in-flight work after SIGTERM, in seconds."""

    @field_validator("nats_url")
    @classmethod
    def _check_nats_url(cls, value: str) -> str:
        for url in value.split(","):
            parts = urlsplit(url.strip())
            if parts.scheme not in {"nats", "tls", "ws", "wss"} or not parts.hostname:
                raise ValueError("must be nats://host:port (or a comma-separated list of them)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must be redis://host:port/db, rediss://… or unix:///path")
        return value


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read settings from the environment, or exit with one line per invalid variable."""
    try:
        return settings_class()
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            variable = "_".join(str(part) for part in problem["loc"]).upper() or "<settings>"
            lines.append(f"invalid configuration: {variable}: {problem['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
