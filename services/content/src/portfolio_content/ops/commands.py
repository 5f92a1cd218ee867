"""The operator commands behind ``portfolio-ops``; each returns an exit status."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from portfolio_shared.contract import CacheFlushed, Subjects
from portfolio_shared.contract.events import encode_event
from portfolio_shared.errors import PortfolioError
from portfolio_shared.events_stream import ensure_events_stream
from portfolio_shared.ids import new_id
from portfolio_shared.logging import configure_logging
from portfolio_shared.nats_client import connect_nats
from portfolio_shared.settings import load_settings
from portfolio_shared.timeutil import format_timestamp, utc_now

from portfolio_content.app import open_database
from portfolio_content.content.service import ContentService
from portfolio_content.db import migrate
from portfolio_content.db.database import Database, file_path_of
from portfolio_content.ops.dump import RestoreRefusedError, mask_url, restore_dump, write_dump
from portfolio_content.settings import ContentSettings
from portfolio_content.transfer.markdown import ReadFailedError, read_folder, write_folder

if TYPE_CHECKING:
    import argparse

__all__ = ["ADMIN_KEY_BYTES", "CommandFailedError", "dispatch"]

ADMIN_KEY_BYTES = 32
"""Random bytes in a generated admin key (43 URL-safe characters)."""

_SECRET_FIELDS = frozenset({"turso_auth_token"})


class CommandFailedError(Exception):
    """A command failed; the message explains why and what to do next."""


def _settings() -> ContentSettings:
    settings = load_settings(ContentSettings)
    configure_logging("content-ops", level="WARNING", fmt=settings.log_format)
    return settings


async def dispatch(arguments: argparse.Namespace) -> int:
    command = arguments.command
    if command == "gen-admin-key":
        print(secrets.token_urlsafe(ADMIN_KEY_BYTES))
        return 0
    settings = _settings()

    if command == "migrate":
        return migrate_command(settings, prod=arguments.prod, revision=arguments.revision)
    if command == "downgrade":
        migrate.downgrade(settings.database_url, settings.auth_token, arguments.revision)
        print(f"reverted to {arguments.revision}")
        return 0
    if command == "db-generate":
        for path in migrate.generate_revision(arguments.message):
            print(f"wrote {path}")
        return 0
    if command == "config":
        print_config(settings)
        return 0
    if command == "flush-cache":
        return await flush_cache(settings)
    if command == "restore":
        return await restore_command(settings, Path(arguments.file), arguments.database_url)

    # The remaining commands work on the configured database, migrated first.
    migrate.upgrade(settings.database_url, settings.auth_token)
    database = open_database(settings)
    await database.open()
    try:
        if command == "backup":
            counts = await write_dump(database, Path(arguments.file))
            summary = ", ".join(f"{table} {count}" for table, count in counts.items())
            print(f"backup written to {arguments.file} ({summary})")
            return 0
        if command == "import":
            return await import_command(database, Path(arguments.directory))
        if command == "export":
            return await export_command(database, Path(arguments.directory))
    except PortfolioError as error:
        raise CommandFailedError(error.message) from None
    finally:
        await database.close()
    raise CommandFailedError(f"unknown command {command!r}")


def migrate_command(settings: ContentSettings, *, prod: bool, revision: str) -> int:
    if prod:
        if file_path_of(settings.database_url) is not None:
            raise CommandFailedError(
                "migrate --prod applies migrations to a libSQL server: set TURSO_DATABASE_URL "
                "to its libsql:// URL (it is a file: URL now)"
            )
        if not settings.auth_token:
            raise CommandFailedError("migrate --prod needs TURSO_AUTH_TOKEN for the libSQL server")
    migrate.upgrade(settings.database_url, settings.auth_token, revision)
    print(
        f"{mask_url(settings.database_url)} is at revision "
        f"{migrate.current_revision(settings.database_url, settings.auth_token)}"
    )
    return 0


async def import_command(database: Database, directory: Path) -> int:
    if not await asyncio.to_thread(directory.is_dir):
        raise CommandFailedError(f"{directory} is not a folder")
    try:
        entries = await asyncio.to_thread(read_folder, directory)
    except ReadFailedError as error:
        raise CommandFailedError(f"nothing was imported; fix these files first:\n{error}") from None
    result = await ContentService(database).import_items(
        [entry.item for entry in entries], changed_by="cli"
    )
    assert result is not None
    print(
        f"imported {len(entries)} files: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )
    return 0


async def export_command(database: Database, directory: Path) -> int:
    items = await ContentService(database).export_items()
    written = await asyncio.to_thread(write_folder, directory, items)
    print(f"exported {len(written)} items to {directory}")
    return 0


async def restore_command(settings: ContentSettings, source: Path, target_url: str) -> int:
    if not await asyncio.to_thread(source.is_file):
        raise CommandFailedError(f"{source} is not a file")
    target = Database(target_url, auth_token=settings.auth_token)
    await target.open()
    try:
        count = await restore_dump(target, source)
    except (RestoreRefusedError, ValueError) as error:
        raise CommandFailedError(str(error)) from None
    finally:
        await target.close()
    print(f"restored {count} statements into {mask_url(target_url)}")
    return 0


async def flush_cache(settings: ContentSettings) -> int:
    subjects = Subjects(settings.nats_namespace)
    client = await connect_nats(settings.nats_url, name="portfolio-ops", first_connect_timeout_s=5)
    try:
        js = client.jetstream()
        await ensure_events_stream(js, subjects)
        event = CacheFlushed(
            event_id=new_id("evt"), requested_by="cli", occurred_at=format_timestamp(utc_now())
        )
        await js.publish(
            subjects.cache_flushed,
            encode_event(event),
            timeout=5,
            headers={"Nats-Msg-Id": event.event_id},
        )
    finally:
        await client.drain()
    print(f"cache flush published ({event.event_id})")
    return 0


def print_config(settings: ContentSettings) -> None:
    values = settings.model_dump()
    values["database_url"] = settings.database_url
    for name in sorted(values):
        value = values[name]
        if name in _SECRET_FIELDS:
            shown = "(unset)" if value is None else "****"
        elif isinstance(value, str) and "://" in value:
            shown = mask_url(value)
        else:
            shown = "(unset)" if value is None else str(value)
        print(f"{name.upper()}={shown}")
