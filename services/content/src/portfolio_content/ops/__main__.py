"""``python -m portfolio_content.ops`` (``portfolio-ops``): operator commands.

Every command reads the content service's settings from the environment
(``TURSO_DATABASE_URL``, ``TURSO_AUTH_TOKEN``, ``DATA_DIR``, ``NATS_URL``,
``NATS_NAMESPACE``...). Exit status: 0 done, 1 failed (the reason on stderr),
2 usage or configuration error.

    migrate [--prod] [--revision REV]   apply migrations (--prod: a libSQL server only)
    downgrade REV                       revert migrations down to REV (``base``: all)
    db-generate -m MESSAGE              autogenerate a migration from the table definitions
    backup FILE.sql                     dump the database to an SQL file
    restore FILE.sql --database-url URL load a dump into a new, empty database
    import DIR                          create or update items from Markdown files
    export DIR                          write every item (not deleted) as Markdown files
    flush-cache                         ask every gateway to drop its content cache
    gen-admin-key                       print a new random admin key
    config                              print the effective configuration, secrets masked
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from portfolio_content.ops import commands

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portfolio-ops", description="Operator commands of the portfolio content service."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument(
        "--prod",
        action="store_true",
        help="production: TURSO_DATABASE_URL must be a libSQL server and TURSO_AUTH_TOKEN set",
    )
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")

    downgrade = sub.add_parser("downgrade", help="revert migrations")
    downgrade.add_argument("revision", help="target revision, or 'base' to revert all")

    generate = sub.add_parser("db-generate", help="autogenerate a migration")
    generate.add_argument("-m", "--message", required=True, help="what the migration changes")

    backup = sub.add_parser("backup", help="dump the database to an SQL file")
    backup.add_argument("file", help="SQL file to write")

    restore = sub.add_parser("restore", help="load an SQL dump into a new database")
    restore.add_argument("file", help="SQL file to read")
    restore.add_argument(
        "--database-url",
        required=True,
        help="the new database (file:PATH or a libSQL URL; TURSO_AUTH_TOKEN is used for it)",
    )

    import_ = sub.add_parser("import", help="import Markdown files with YAML front matter")
    import_.add_argument("directory", help="folder of <type>/<slug>.md files")

    export = sub.add_parser("export", help="export items as Markdown files")
    export.add_argument("directory", help="folder to write <type>/<slug>.md files into")

    sub.add_parser("flush-cache", help="publish a cache flush event to every gateway")
    sub.add_parser("gen-admin-key", help="print a new random admin API key")
    sub.add_parser("config", help="print the effective configuration with secrets masked")
    return parser


def main(argv: list[str] | None = None) -> None:
    arguments = _parser().parse_args(argv)
    try:
        status = asyncio.run(commands.dispatch(arguments))
    except commands.CommandFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        status = 1
    raise SystemExit(status)


if __name__ == "__main__":
    main()
