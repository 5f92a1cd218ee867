"""The compiled statement cache: one compile per statement shape, each statement's own values,
expanding IN lists, literal SQL and DDL kept apart, and a bounded size. Statements compiled
once with named parameters: each run's values in place, and no value missing or unknown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from portfolio_shared.sql.statements import (
    BoundStatement,
    CompiledStatement,
    StatementCache,
    compile_in_full,
    compile_statement,
)
from sqlalchemy.schema import CreateIndex, CreateTable

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.sql.expression import ClauseElement

metadata = sa.MetaData()

content = sa.Table(
    "content",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("slug", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sort_order", sa.Integer, nullable=False),
    sa.Column("deleted_at", sa.Text),
    sa.Index("content_type_slug", "type", "slug"),
)
"""A table shaped like the content service's, local to these tests."""

content_history = sa.Table(
    "content_history",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("content_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("change_type", sa.Text, nullable=False),
    sa.Column("changed_by", sa.Text, nullable=False),
    sa.Column("change_summary", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)

PUBLIC_ORDER = (content.c.sort_order, content.c.id)


def published_item(content_type: str, slug: str) -> ClauseElement:
    return sa.select(content).where(
        content.c.status == "published",
        content.c.deleted_at.is_(None),
        content.c.type == content_type,
        content.c.slug == slug,
    )


def admin_page(limit: int, offset: int) -> ClauseElement:
    return sa.select(content).order_by(*PUBLIC_ORDER).limit(limit).offset(offset)


def history_entry(content_id: str, version: int) -> ClauseElement:
    return sa.insert(content_history).values(
        id=f"hist_{version}",
        content_id=content_id,
        version=version,
        data="{}",
        change_type="update",
        changed_by="admin",
        change_summary="",
        created_at="2025-03-01T10:00:00.000Z",
    )


def renamed_slug(content_id: str, slug: str) -> ClauseElement:
    return sa.update(content).where(content.c.id == content_id).values(slug=slug)


@pytest.mark.parametrize(
    ("build", "first", "second"),
    [
        (published_item, ("about", "maya"), ("project", "lamp")),
        (admin_page, (10, 0), (25, 50)),
        (history_entry, ("content_a", 1), ("content_b", 7)),
        (renamed_slug, ("content_a", "old"), ("content_b", "new")),
    ],
)
def test_same_shape_compiles_once(
    build: Callable[..., ClauseElement], first: tuple[Any, ...], second: tuple[Any, ...]
) -> None:
    cache = StatementCache()

    first_result = cache.compile(build(*first))
    second_result = cache.compile(build(*second))

    assert len(cache) == 1
    assert first_result == compile_in_full(build(*first))
    assert second_result == compile_in_full(build(*second))


def test_arguments_follow_placeholder_order() -> None:
    cache = StatementCache()
    cache.compile(published_item("about", "maya"))

    sql, args = cache.compile(published_item("project", "lamp"))

    assert sql.count("?") == 3
    assert args == ["published", "project", "lamp"]


def test_in_lists_of_any_length() -> None:
    cache = StatementCache()

    def by_ids(*ids: str) -> ClauseElement:
        return sa.select(content.c.id).where(content.c.id.in_(ids), content.c.type == "project")

    for ids in (("a",), ("a", "b", "c"), ("d", "e"), ("f",)):
        sql, args = cache.compile(by_ids(*ids))
        assert sql.count("?") == len(ids) + 1
        assert args == [*ids, "project"]
        assert (sql, args) == compile_in_full(by_ids(*ids))


def test_empty_in_list_compiles_like_a_plain_compile() -> None:
    cache = StatementCache()
    statement = sa.select(content.c.id).where(content.c.id.in_([]))

    assert cache.compile(statement) == compile_in_full(statement)


def test_literal_execute_parameter_is_rendered_per_statement() -> None:
    cache = StatementCache()

    def with_literal(value: int) -> ClauseElement:
        return sa.select(content.c.id).where(
            content.c.version == sa.bindparam("version", value, literal_execute=True)
        )

    first_sql, _ = cache.compile(with_literal(1))
    second_sql, _ = cache.compile(with_literal(2))

    assert first_sql.endswith("= 1")
    assert second_sql.endswith("= 2")


def test_literal_sql_is_not_shared() -> None:
    cache = StatementCache()

    def labelled(text: str) -> ClauseElement:
        return sa.select(sa.literal_column(text).label("label"), content.c.id)

    first_sql, _ = cache.compile(labelled("'first'"))
    second_sql, _ = cache.compile(labelled("'second'"))

    assert "'first'" in first_sql
    assert "'second'" in second_sql
    assert len(cache) == 2


def test_text_statements_keep_their_own_bound_values() -> None:
    cache = StatementCache()

    def text_query(value: int) -> ClauseElement:
        return sa.text("SELECT :value AS value").bindparams(value=value)

    assert cache.compile(text_query(1)) == ("SELECT ? AS value", [1])
    assert cache.compile(text_query(2)) == ("SELECT ? AS value", [2])


def test_bound_literal_values_are_not_mixed_up() -> None:
    cache = StatementCache()

    def pair(left: str, right: str) -> ClauseElement:
        return sa.select(sa.literal(left).label("left"), sa.literal(right).label("right"))

    cache.compile(pair("a", "b"))

    assert cache.compile(pair("c", "d"))[1] == ["c", "d"]
    assert cache.compile(pair("d", "c"))[1] == ["d", "c"]


def test_raw_sql_strings_pass_through() -> None:
    cache = StatementCache()

    assert cache.compile("SELECT 1") == ("SELECT 1", [])
    assert len(cache) == 0


def test_cache_evicts_least_recently_used() -> None:
    cache = StatementCache(size=2)
    shapes: list[Callable[[], ClauseElement]] = [
        lambda: sa.select(content.c.id).where(content.c.type == "a"),
        lambda: sa.select(content.c.slug).where(content.c.type == "b"),
        lambda: sa.select(content.c.data).where(content.c.type == "c"),
    ]

    for build in shapes:
        cache.compile(build())
    evicted_again = cache.compile(shapes[0]())

    assert len(cache) == 2
    assert evicted_again == compile_in_full(shapes[0]())


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StatementCache(size=0)


@pytest.mark.parametrize(
    "statement",
    [
        CreateTable(content, if_not_exists=True),
        CreateIndex(next(iter(content.indexes)), if_not_exists=True),
    ],
    ids=["table", "index"],
)
def test_ddl_compiles_without_arguments(statement: ClauseElement) -> None:
    cache = StatementCache()

    sql, args = cache.compile(statement)

    assert sql.lstrip().startswith("CREATE ")
    assert "IF NOT EXISTS" in sql
    assert args == []


def published_by_type_and_slug() -> CompiledStatement:
    return CompiledStatement(
        sa.select(content).where(
            content.c.status == "published",
            content.c.deleted_at.is_(None),
            content.c.type == sa.bindparam("content_type"),
            content.c.slug == sa.bindparam("slug"),
        )
    )


@pytest.mark.parametrize(("content_type", "slug"), [("about", "maya"), ("project", "lamp")])
def test_compiled_statement_matches_a_plain_compile(content_type: str, slug: str) -> None:
    statement = published_by_type_and_slug()

    bound = statement.bind(content_type=content_type, slug=slug)

    assert tuple(bound) == compile_in_full(published_item(content_type, slug))


def test_compiled_statement_names_its_parameters() -> None:
    assert published_by_type_and_slug().names == {"content_type", "slug"}


@pytest.mark.parametrize(
    "values",
    [{"content_type": "about"}, {"content_type": "about", "slug": "maya", "status": "draft"}, {}],
    ids=["missing", "unknown", "none"],
)
def test_compiled_statement_rejects_other_parameters(values: dict[str, str]) -> None:
    statement = published_by_type_and_slug()

    with pytest.raises(ValueError, match="requires values for exactly content_type, slug"):
        statement.bind(**values)


def test_compiled_statement_rejects_an_expanding_in_list() -> None:
    with pytest.raises(ValueError, match="expanding IN list"):
        CompiledStatement(sa.select(content.c.id).where(content.c.id.in_(["a", "b"])))


def test_bound_statement_compiles_to_itself() -> None:
    bound = BoundStatement("SELECT ?", ["value"])

    assert compile_statement(bound) == ("SELECT ?", ["value"])
