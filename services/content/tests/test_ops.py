"""The operator CLI: keys, configuration, migrations, Markdown import/export, backup/restore
and the cache flush event."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import pytest
from nats.js.api import DeliverPolicy
from portfolio_content.content.service import ContentService, WriteContext
from portfolio_content.content.validation import validate_update
from portfolio_content.db.database import Database
from portfolio_content.ops.__main__ import main
from portfolio_content.sample import SAMPLE_DIR
from portfolio_shared.contract import CacheFlushed, Subjects
from portfolio_shared.contract.events import decode_event
from portfolio_shared.nats_client import connect_nats

if TYPE_CHECKING:
    from pathlib import Path

    from portfolio_shared.testing.servers import ManagedServer

pytestmark = pytest.mark.timeout(60)

TABLES = ("alembic_version", "content", "content_history", "idempotency_keys", "outbox")


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nats_server: ManagedServer, namespace: str
) -> Path:
    """Environment of an operator shell: a fresh data folder, the test NATS and namespace."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("NATS_URL", nats_server.url)
    monkeypatch.setenv("NATS_NAMESPACE", namespace)
    monkeypatch.delenv("TURSO_DATABASE_URL", raising=False)
    monkeypatch.delenv("TURSO_AUTH_TOKEN", raising=False)
    return data_dir


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    return int(stopped.value.code or 0)


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()  # noqa: S608
    finally:
        connection.close()


def test_gen_admin_key_prints_a_long_url_safe_key(capsys: pytest.CaptureFixture[str]) -> None:
    run("gen-admin-key")
    key = capsys.readouterr().out.strip()
    assert len(key) >= 32
    assert key.replace("-", "").replace("_", "").isalnum()


def test_config_masks_the_auth_token(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TURSO_AUTH_TOKEN", "very-secret-token")
    run("config")
    output = capsys.readouterr().out
    assert "very-secret-token" not in output
    assert "TURSO_AUTH_TOKEN=****" in output


def test_config_shows_the_effective_database_url(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("config")
    assert f"DATABASE_URL=file:{env.resolve() / 'portfolio.db'}" in capsys.readouterr().out


def test_migrate_creates_the_database(env: Path) -> None:
    assert run("migrate") == 0
    assert (env / "portfolio.db").exists()


def test_migrate_prod_refuses_a_file_url(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run("migrate", "--prod")
    assert status == 1
    assert "file: URL" in capsys.readouterr().err


def test_migrate_prod_requires_an_auth_token(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TURSO_DATABASE_URL", "libsql://portfolio.example.turso.io")
    status = run("migrate", "--prod")
    assert status == 1
    assert "TURSO_AUTH_TOKEN" in capsys.readouterr().err


def test_import_creates_every_sample_item(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("import", str(SAMPLE_DIR))
    assert "14 created, 0 updated, 0 unchanged" in capsys.readouterr().out


def test_import_twice_changes_nothing(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("import", str(SAMPLE_DIR))
    run("import", str(SAMPLE_DIR))
    assert "0 created, 0 updated, 14 unchanged" in capsys.readouterr().out


def test_import_updates_a_changed_file(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "site" / "post"
    folder.mkdir(parents=True)
    (folder / "hello.md").write_text("---\ntitle: Hello\n---\nFirst.\n")
    run("import", str(tmp_path / "site"))
    (folder / "hello.md").write_text("---\ntitle: Hello again\n---\nSecond.\n")
    run("import", str(tmp_path / "site"))
    assert "0 created, 1 updated" in capsys.readouterr().out


def test_bad_files_are_reported_by_name_and_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "site" / "post"
    folder.mkdir(parents=True)
    (folder / "good.md").write_text("---\ntitle: Fine\n---\n")
    (folder / "broken.md").write_text("---\ntitle: Fine\ntags: [a, b\n---\n")
    (folder / "status.md").write_text("---\ntitle: X\nstatus: live\n---\n")
    status = run("import", str(tmp_path / "site"))
    errors = capsys.readouterr().err
    assert status == 1
    assert f"{folder / 'broken.md'}:3: invalid YAML" in errors
    assert f"{folder / 'status.md'}:3: status: Invalid enum value" in errors


def test_nothing_is_imported_when_one_file_is_bad(env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "site" / "post"
    folder.mkdir(parents=True)
    (folder / "good.md").write_text("---\ntitle: Fine\n---\n")
    (folder / "Bad Name.md").write_text("---\ntitle: Fine\n---\n")
    run("import", str(tmp_path / "site"))
    assert rows(env / "portfolio.db", "content") == []


def test_export_writes_one_markdown_file_per_item(env: Path, tmp_path: Path) -> None:
    run("import", str(SAMPLE_DIR))
    run("export", str(tmp_path / "out"))
    exported = sorted(
        path.relative_to(tmp_path / "out") for path in (tmp_path / "out").rglob("*.md")
    )
    assert exported == sorted(path.relative_to(SAMPLE_DIR) for path in SAMPLE_DIR.rglob("*.md"))


def test_exported_folder_imports_back_unchanged(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("import", str(SAMPLE_DIR))
    run("export", str(tmp_path / "out"))
    capsys.readouterr()
    run("import", str(tmp_path / "out"))
    assert "0 created, 0 updated, 14 unchanged" in capsys.readouterr().out


def test_data_keys_named_like_item_fields_survive_export(env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "site" / "post"
    folder.mkdir(parents=True)
    (folder / "odd.md").write_text("---\ndata:\n  title: Odd\n  type: not the item type\n---\n")
    run("import", str(tmp_path / "site"))
    run("export", str(tmp_path / "out"))
    text = (tmp_path / "out" / "post" / "odd.md").read_text()
    assert "data:\n  title: Odd\n  type: not the item type\n" in text


async def _make_history(database_url: str) -> None:
    async with Database(database_url) as database:
        service = ContentService(database)
        [item] = [entry for entry in await service.export_items() if entry["slug"] == "ledgerline"]
        context = WriteContext(changed_by="admin")
        await service.update(item["id"], validate_update({"data": {"title": "V2"}}), context)
        await service.delete(item["id"], hard=False, context=context)


def test_backup_and_restore_keep_every_row_and_history_entry(env: Path, tmp_path: Path) -> None:
    run("import", str(SAMPLE_DIR))
    asyncio.run(_make_history(f"file:{env / 'portfolio.db'}"))
    run("backup", str(tmp_path / "backup.sql"))
    run("restore", str(tmp_path / "backup.sql"), "--database-url", f"file:{tmp_path / 'new.db'}")
    assert [rows(tmp_path / "new.db", table) for table in TABLES] == [
        rows(env / "portfolio.db", table) for table in TABLES
    ]


def test_restore_refuses_a_database_that_has_tables(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("import", str(SAMPLE_DIR))
    run("backup", str(tmp_path / "backup.sql"))
    status = run(
        "restore", str(tmp_path / "backup.sql"), "--database-url", f"file:{env / 'portfolio.db'}"
    )
    assert status == 1
    assert "restore into a new database" in capsys.readouterr().err


def test_restore_reads_a_sqlite_dump(env: Path, tmp_path: Path) -> None:
    run("import", str(SAMPLE_DIR))
    connection = sqlite3.connect(env / "portfolio.db")
    try:
        (tmp_path / "dump.sql").write_text("\n".join(connection.iterdump()))
    finally:
        connection.close()
    run("restore", str(tmp_path / "dump.sql"), "--database-url", f"file:{tmp_path / 'new.db'}")
    assert len(rows(tmp_path / "new.db", "content")) == 14


async def _first_flush(nats_url: str, namespace: str) -> CacheFlushed:
    client = await connect_nats(nats_url, name="flush-reader")
    try:
        subscription = await client.jetstream().subscribe(
            Subjects(namespace).cache_flushed,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        event = decode_event((await subscription.next_msg(timeout=10)).data)
    finally:
        await client.drain()
    assert isinstance(event, CacheFlushed)
    return event


def test_flush_cache_publishes_a_cache_flushed_event(
    env: Path, nats_server: ManagedServer, namespace: str
) -> None:
    run("flush-cache")
    event = asyncio.run(_first_flush(nats_server.url, namespace))
    assert event.requested_by == "cli"
