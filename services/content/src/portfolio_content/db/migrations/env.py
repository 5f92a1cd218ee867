"""Alembic environment: runs migrations on the engine ``migrate.py`` passes in.

Batch mode is on, so ``ALTER`` operations SQLite lacks are done by copying the
table. Autogenerate compares only the content service's own tables: the chat
service may keep its tables in the same database, and those must never show
up as tables to drop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import context
from portfolio_content.db.schema import metadata

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames


def include_name(name: str | None, type_: str, parent_names: NameFilterParentNames) -> bool:
    """Return whether autogenerate reflects ``name``: tables only when ``metadata`` defines them."""
    if type_ == "table":
        return name in metadata.tables
    return True


engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
