"""Queries on the ``content`` and ``content_history`` tables, built with SQLAlchemy Core.

Functions take a ``Transaction`` (inside a write) or the ``Database`` (plain
reads); both offer ``fetch_all``/``fetch_one``/``execute``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from portfolio_shared.ids import new_id
from portfolio_shared.sql.statements import CompiledStatement

from portfolio_content.db.schema import content, content_history

if TYPE_CHECKING:
    from collections.abc import Sequence

    from portfolio_shared.sql.statements import BoundStatement
    from sqlalchemy.sql.expression import ClauseElement as Executable

    from portfolio_content.db.database import Row

__all__ = [
    "PUBLIC_ORDER",
    "Reader",
    "count_items",
    "delete_with_history",
    "get_by_id",
    "get_by_type_slug",
    "get_history_version",
    "get_published",
    "insert_history",
    "insert_item",
    "list_admin",
    "list_history",
    "list_live",
    "list_published",
    "published_type_counts",
    "search_candidates",
    "slug_owner",
    "update_item",
]

PUBLIC_ORDER = (content.c.sort_order.asc(), content.c.created_at.desc(), content.c.id.asc())
"""Order of every list: ``sortOrder`` ascending, then newest first."""


class Reader(Protocol):
    async def fetch_all(
        self, statement: Executable | BoundStatement | str, args: Sequence[Any] = ()
    ) -> list[Row]:
        """Run a query and return its rows."""

    async def fetch_one(
        self, statement: Executable | BoundStatement | str, args: Sequence[Any] = ()
    ) -> Row | None:
        """Run a query and return its first row."""


def _published() -> sa.ColumnElement[bool]:
    return sa.and_(content.c.status == "published", content.c.deleted_at.is_(None))


_PUBLISHED_ITEM = CompiledStatement(
    sa.select(content).where(
        _published(),
        content.c.type == sa.bindparam("content_type"),
        content.c.slug == sa.bindparam("slug"),
    )
)
"""The public item read, compiled once because every uncached item request runs it."""


# Reads


async def get_by_id(reader: Reader, content_id: str) -> Row | None:
    return await reader.fetch_one(sa.select(content).where(content.c.id == content_id))


async def get_by_type_slug(reader: Reader, content_type: str, slug: str) -> Row | None:
    return await reader.fetch_one(
        sa.select(content).where(content.c.type == content_type, content.c.slug == slug)
    )


async def count_items(reader: Reader) -> int:
    """Rows in ``content``, soft-deleted ones included."""
    row = await reader.fetch_one(sa.select(sa.func.count().label("items")).select_from(content))
    return int(row["items"]) if row else 0


async def list_live(reader: Reader) -> list[Row]:
    """Return every item that is not soft-deleted, of any status, in the public order."""
    return await reader.fetch_all(
        sa.select(content).where(content.c.deleted_at.is_(None)).order_by(*PUBLIC_ORDER)
    )


async def slug_owner(reader: Reader, content_type: str, slug: str) -> str | None:
    """Id of the row (soft-deleted ones included) holding ``slug`` within ``content_type``."""
    row = await reader.fetch_one(
        sa.select(content.c.id).where(content.c.type == content_type, content.c.slug == slug)
    )
    return None if row is None else str(row["id"])


async def list_published(reader: Reader, content_type: str | None = None) -> list[Row]:
    query = sa.select(content).where(_published())
    if content_type is not None:
        query = query.where(content.c.type == content_type)
    return await reader.fetch_all(query.order_by(*PUBLIC_ORDER))


async def get_published(reader: Reader, content_type: str, slug: str) -> Row | None:
    return await reader.fetch_one(_PUBLISHED_ITEM.bind(content_type=content_type, slug=slug))


async def list_admin(
    reader: Reader,
    *,
    content_type: str | None,
    status: str | None,
    include_deleted: bool,
    limit: int,
    offset: int,
) -> list[Row]:
    query = sa.select(content)
    if content_type is not None:
        query = query.where(content.c.type == content_type)
    if status is not None:
        query = query.where(content.c.status == status)
    if not include_deleted:
        query = query.where(content.c.deleted_at.is_(None))
    return await reader.fetch_all(query.order_by(*PUBLIC_ORDER).limit(limit).offset(offset))


async def list_history(reader: Reader, content_id: str, *, limit: int, offset: int) -> list[Row]:
    return await reader.fetch_all(
        sa.select(content_history)
        .where(content_history.c.content_id == content_id)
        .order_by(content_history.c.version.desc())
        .limit(limit)
        .offset(offset)
    )


async def get_history_version(reader: Reader, content_id: str, version: int) -> Row | None:
    return await reader.fetch_one(
        sa.select(content_history).where(
            content_history.c.content_id == content_id, content_history.c.version == version
        )
    )


async def published_type_counts(reader: Reader) -> list[Row]:
    """``type`` and ``count`` of published items, types in order of first appearance."""
    first_order = sa.func.min(content.c.sort_order)
    return await reader.fetch_all(
        sa.select(content.c.type, sa.func.count().label("count"))
        .where(_published())
        .group_by(content.c.type)
        .order_by(first_order, content.c.type)
    )


async def search_candidates(
    reader: Reader, terms: Sequence[str], content_type: str | None
) -> list[Row]:
    """Published rows whose type, slug or data contains any of ``terms`` (case-insensitive)."""
    matches = []
    for term in terms:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for column in (content.c.type, content.c.slug, content.c.data):
            matches.append(sa.func.lower(column).like(pattern, escape="\\"))
    query = sa.select(content).where(_published(), sa.or_(*matches))
    if content_type is not None:
        query = query.where(content.c.type == content_type)
    return await reader.fetch_all(query.order_by(*PUBLIC_ORDER))


# Writes (inside a transaction)


class Writer(Reader, Protocol):
    async def execute(
        self, statement: Executable | BoundStatement | str, args: Sequence[Any] = ()
    ) -> int:
        """Run a statement and return the number of rows it changed."""


async def insert_item(writer: Writer, values: dict[str, Any]) -> None:
    await writer.execute(sa.insert(content).values(**values))


async def update_item(
    writer: Writer, content_id: str, *, expected_version: int, values: dict[str, Any]
) -> bool:
    """Apply ``values`` if the row is still at ``expected_version``; False when it is not."""
    changed = await writer.execute(
        sa.update(content)
        .where(content.c.id == content_id, content.c.version == expected_version)
        .values(**values)
    )
    return changed == 1


async def insert_history(
    writer: Writer,
    *,
    content_id: str,
    version: int,
    data: dict[str, Any],
    change_type: str,
    changed_by: str,
    summary: str,
    created_at: str,
) -> None:
    await writer.execute(
        sa.insert(content_history).values(
            id=new_id("hist"),
            content_id=content_id,
            version=version,
            data=json.dumps(data, ensure_ascii=False),
            change_type=change_type,
            changed_by=changed_by,
            change_summary=summary,
            created_at=created_at,
        )
    )


async def delete_with_history(writer: Writer, content_id: str) -> None:
    await writer.execute(
        sa.delete(content_history).where(content_history.c.content_id == content_id)
    )
    await writer.execute(sa.delete(content).where(content.c.id == content_id))
