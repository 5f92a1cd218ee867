"""Alembic migrations on SQLite files: up, down, concurrent startups, no drift from the models."""

from __future__ import annotations

import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from portfolio_content.db import migrate
from portfolio_content.db.schema import metadata

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)

TABLES = {"alembic_version", "content", "content_history", "idempotency_keys", "outbox"}


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_creates_every_table(tmp_path: Path) -> None:
    migrate.upgrade(f"file:{tmp_path / 'a.db'}")
    assert tables(tmp_path / "a.db") == TABLES


def test_upgrade_switches_a_file_database_to_wal(tmp_path: Path) -> None:
    migrate.upgrade(f"file:{tmp_path / 'a.db'}")
    with sqlite3.connect(tmp_path / "a.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_downgrade_to_base_removes_the_tables(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'a.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, revision="base")
    assert tables(tmp_path / "a.db") == {"alembic_version"}


def test_upgrade_after_downgrade_reaches_head_again(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'a.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, revision="base")
    migrate.upgrade(url)
    assert migrate.current_revision(url) == "0001"


def test_migrations_match_the_table_definitions(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'a.db'}"
    migrate.upgrade(url)
    engine = migrate.migration_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


def test_concurrent_startups_migrate_once(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'shared.db'}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: migrate.upgrade(url), range(4)))
    assert migrate.current_revision(url) == "0001"


def test_generate_revision_writes_a_new_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", scripts)
    [written] = migrate.generate_revision("check drift")
    assert "def upgrade() -> None:" in written.read_text()
