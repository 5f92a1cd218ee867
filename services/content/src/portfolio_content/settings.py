"""Settings of the content service, read from the environment.

``TURSO_DATABASE_URL`` selects the database: a ``file:`` URL (the embedded
default, ``file:<DATA_DIR>/portfolio.db``) or a libSQL server URL
(``libsql://``, ``wss://``, ``ws://``) used with ``TURSO_AUTH_TOKEN``.
"""

from __future__ import annotations

from portfolio_shared.settings import CommonSettings
from pydantic import Field, SecretStr, field_validator

__all__ = ["REMOTE_SCHEMES", "ContentSettings"]

REMOTE_SCHEMES = ("libsql", "wss", "ws", "https", "http")
"""URL schemes of a libSQL server (Turso); ``file:`` is the embedded SQLite file."""


class ContentSettings(CommonSettings):
    """Variables of the content service (on top of ``CommonSettings``)."""

    turso_database_url: str | None = None
    """Database URL; unset means ``file:<DATA_DIR>/portfolio.db``."""

    turso_auth_token: SecretStr | None = None
    """Token for a libSQL server; never logged or printed."""

    seed_sample_content: bool = True
    """Load the bundled sample portfolio when the ``content`` table is empty at startup."""

    audit_log: bool = True
    """Write one ``admin action`` log line per admin change."""

    idempotency_ttl_s: int = Field(default=86_400, ge=60)
    """How long a stored idempotent reply is replayed, in seconds."""

    outbox_poll_interval_ms: int = Field(default=1000, ge=10, le=60_000)
    """How often the outbox relay looks for events written by other replicas, in milliseconds."""

    database_retry_attempts: int = Field(default=8, ge=1, le=50)
    """Attempts of one database operation before transient errors become a 503."""

    database_retry_base_delay_ms: int = Field(default=10, ge=1, le=5000)
    """First backoff delay after a transient database error, doubled each retry, in milliseconds."""

    database_retry_max_delay_ms: int = Field(default=500, ge=1, le=30_000)
    """Maximum backoff delay between two attempts, in milliseconds."""

    @field_validator("turso_database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        scheme = value.split(":", 1)[0]
        if scheme != "file" and scheme not in REMOTE_SCHEMES:
            raise ValueError("must be file:PATH, libsql://HOST, wss://HOST or ws://HOST:PORT")
        return value.strip()

    @property
    def database_url(self) -> str:
        """The effective database URL."""
        if self.turso_database_url:
            return self.turso_database_url
        return f"file:{self.data_dir.resolve() / 'portfolio.db'}"

    @property
    def auth_token(self) -> str | None:
        return self.turso_auth_token.get_secret_value() if self.turso_auth_token else None
