"""Applying, reverting and generating Alembic migrations.

Migrations run through a synchronous SQLAlchemy engine: stdlib sqlite3 for a
``file:`` URL, libsql-client's DB-API module for a libSQL server. Several
replicas may start at once. On a file database they take turns under a file
lock. On a server, a replica whose migration collided with another's re-reads
the current revision and tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from portfolio_shared.logging import get_logger
from sqlalchemy.pool import NullPool

from portfolio_content.db.database import file_path_of

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "MIGRATIONS_DIR",
    "current_revision",
    "downgrade",
    "generate_revision",
    "migration_engine",
    "upgrade",
]

log = get_logger("content.migrations")

# libsql-client's DB-API module logs every worker thread start and stop at INFO.
logging.getLogger("libsql_client").setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
"""Alembic script folder shipped inside the package."""

_COLLISION_ATTEMPTS = 5


def migration_engine(url: str, auth_token: str | None = None) -> sa.Engine:
    """Build a synchronous engine on ``url`` for Alembic (no connection pooling)."""
    path = file_path_of(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_path = str(path)

        def connect_file() -> Any:
            return sqlite3.connect(file_path, timeout=30)

        return sa.create_engine("sqlite://", creator=connect_file, poolclass=NullPool)

    from libsql_client import dbapi2

    server_url = url.replace("https://", "wss://").replace("http://", "ws://")

    def connect_server() -> Any:
        return dbapi2.connect(server_url, auth_token=auth_token)

    return sa.create_engine("sqlite://", creator=connect_server, poolclass=NullPool)


def _config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    path = file_path_of(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate.lock", "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def current_revision(url: str, auth_token: str | None = None) -> str | None:
    engine = migration_engine(url, auth_token)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, auth_token: str | None = None, revision: str = "head") -> None:
    """Bring the database to ``revision``; on a file database also switch to WAL journaling."""
    engine = migration_engine(url, auth_token)
    try:
        with _migration_lock(url):
            for attempt in range(1, _COLLISION_ATTEMPTS + 1):
                try:
                    command.upgrade(_config(engine), revision)
                    break
                except sa.exc.OperationalError as error:
                    if attempt == _COLLISION_ATTEMPTS:
                        raise
                    # Another replica migrating at the same moment, or a dropped connection.
                    log.warning(
                        "migration failed, retrying",
                        attempt=attempt,
                        error=str(error.orig),
                    )
                    time.sleep(0.2 * attempt)
            if file_path_of(url) is not None:
                with engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        log.info("migrations applied", revision=current_revision(url, auth_token))
    finally:
        engine.dispose()


def downgrade(url: str, auth_token: str | None = None, revision: str = "base") -> None:
    engine = migration_engine(url, auth_token)
    try:
        with _migration_lock(url):
            command.downgrade(_config(engine), revision)
        log.info("migrations reverted", revision=revision)
    finally:
        engine.dispose()


def generate_revision(message: str) -> list[Path]:
    """Autogenerate a revision from the table definitions against a scratch database at head.

    Returns the files written into the migrations folder.
    """
    with tempfile.TemporaryDirectory(prefix="content-autogen-") as scratch:
        url = f"file:{scratch}/autogen.db"
        upgrade(url)
        engine = migration_engine(url)
        try:
            before = set(MIGRATIONS_DIR.joinpath("versions").glob("*.py"))
            command.revision(_config(engine), message=message, autogenerate=True)
            after = set(MIGRATIONS_DIR.joinpath("versions").glob("*.py"))
        finally:
            engine.dispose()
    return sorted(after - before)
