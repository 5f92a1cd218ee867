"""The public item query, compiled once: each run's values give the SQL text and arguments
of the same query built and compiled in full."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from portfolio_content.content import repository
from portfolio_content.db.schema import content
from portfolio_shared.sql.statements import compile_in_full

if TYPE_CHECKING:
    from sqlalchemy.sql.expression import ClauseElement


def published_item(content_type: str, slug: str) -> ClauseElement:
    return sa.select(content).where(
        content.c.status == "published",
        content.c.deleted_at.is_(None),
        content.c.type == content_type,
        content.c.slug == slug,
    )


@pytest.mark.parametrize(("content_type", "slug"), [("about", "maya"), ("project", "lamp")])
def test_published_item_matches_a_plain_compile(content_type: str, slug: str) -> None:
    bound = repository._PUBLISHED_ITEM.bind(content_type=content_type, slug=slug)

    assert tuple(bound) == compile_in_full(published_item(content_type, slug))
