"""Alembic environment: runs migrations on the engine ``migrate.py`` passes in.

Batch mode is on, so ``ALTER`` operations SQLite lacks are done by copying the
table.
"""

from __future__ import annotations

from alembic import context
from portfolio_content.db.schema import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
