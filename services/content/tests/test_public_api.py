"""Public reads and the chat tools' search and types endpoints."""

from __future__ import annotations

import pytest
from portfolio_content.app import ContentInstance, seed_sample_content
from portfolio_content.content.model import public_etag
from portfolio_shared.errors import NotFoundError, ValidationFailedError

from .conftest import ContentClient

pytestmark = pytest.mark.timeout(60)


async def publish(content: ContentClient, content_type: str, title: str, **extra: object) -> str:
    item = await content.create(
        {"type": content_type, "data": {"title": title}, "status": "published", **extra}
    )
    return str(item["id"])


async def test_public_list_shows_only_published_live_items(content: ContentClient) -> None:
    visible = await publish(content, "project", "Visible")
    await content.create({"type": "project", "data": {"title": "Draft"}})
    deleted = await publish(content, "project", "Deleted")
    await content.call(content.subjects.content_admin_delete, params={"id": deleted})
    reply = await content.http(content.subjects.content_public_list)
    assert [item["id"] for item in reply.body["data"]] == [visible]


async def test_public_list_orders_by_sort_order_then_newest(content: ContentClient) -> None:
    late = await publish(content, "project", "Late", sortOrder=2)
    first_older = await publish(content, "project", "Older", sortOrder=1)
    first_newer = await publish(content, "project", "Newer", sortOrder=1)
    reply = await content.http(content.subjects.content_public_list)
    assert [item["id"] for item in reply.body["data"]] == [first_newer, first_older, late]


async def test_public_list_filters_by_type(content: ContentClient) -> None:
    project = await publish(content, "project", "P")
    await publish(content, "post", "Q")
    reply = await content.http(content.subjects.content_public_list, query={"type": "project"})
    assert [item["id"] for item in reply.body["data"]] == [project]


async def test_public_list_validates_status_but_ignores_it(content: ContentClient) -> None:
    project = await publish(content, "project", "P")
    reply = await content.http(content.subjects.content_public_list, query={"status": "draft"})
    assert [item["id"] for item in reply.body["data"]] == [project]


async def test_public_list_with_bad_type_is_400(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid query parameters"):
        await content.call(content.subjects.content_public_list, query={"type": "Bad!"})


async def test_public_reply_carries_a_strong_etag_of_its_data(content: ContentClient) -> None:
    await publish(content, "project", "P")
    reply = await content.http(content.subjects.content_public_list)
    assert reply.headers["ETag"] == public_etag(reply.body["data"])


async def test_public_etag_changes_when_content_changes(content: ContentClient) -> None:
    item_id = await publish(content, "project", "P")
    before = await content.http(content.subjects.content_public_bundle)
    await content.update(item_id, {"data": {"title": "P2"}})
    after = await content.http(content.subjects.content_public_bundle)
    assert before.headers["ETag"] != after.headers["ETag"]


async def test_public_item_by_type_and_slug(content: ContentClient) -> None:
    item_id = await publish(content, "project", "Harbour Tides")
    reply = await content.http(
        content.subjects.content_public_item, params={"type": "project", "slug": "harbour-tides"}
    )
    assert reply.body["data"]["id"] == item_id


@pytest.mark.parametrize("status", ["draft", "archived"])
async def test_unpublished_item_is_not_found_publicly(content: ContentClient, status: str) -> None:
    await content.create({"type": "project", "slug": "hidden", "data": {"a": 1}, "status": status})
    with pytest.raises(NotFoundError, match="Content with identifier 'project/hidden' not found"):
        await content.call(
            content.subjects.content_public_item, params={"type": "project", "slug": "hidden"}
        )


async def test_deleted_item_is_not_found_publicly(content: ContentClient) -> None:
    item_id = await publish(content, "project", "Gone")
    await content.call(content.subjects.content_admin_delete, params={"id": item_id})
    with pytest.raises(NotFoundError, match="'project/gone' not found"):
        await content.call(
            content.subjects.content_public_item, params={"type": "project", "slug": "gone"}
        )


async def test_public_item_matches_type_and_slug_together(content: ContentClient) -> None:
    project = await publish(content, "project", "Shared")
    note = await publish(content, "note", "Shared")
    replies = [
        await content.http(
            content.subjects.content_public_item, params={"type": content_type, "slug": "shared"}
        )
        for content_type in ("project", "note")
    ]
    assert replies[0].body["data"]["id"] == project
    assert replies[1].body["data"]["id"] == note


async def test_public_item_with_bad_params_is_400(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid parameters"):
        await content.call(
            content.subjects.content_public_item, params={"type": "project", "slug": "Bad Slug"}
        )


async def test_bundle_groups_by_type_in_order_of_first_appearance(content: ContentClient) -> None:
    await publish(content, "skill", "S", sortOrder=2)
    await publish(content, "about", "A", sortOrder=0)
    await publish(content, "project", "P", sortOrder=1)
    reply = await content.http(content.subjects.content_public_bundle)
    assert list(reply.body["data"]) == ["about", "project", "skill"]


async def test_empty_bundle_is_an_empty_object(content: ContentClient) -> None:
    reply = await content.http(content.subjects.content_public_bundle)
    assert reply.body == {"data": {}}


async def test_sample_portfolio_loads_into_an_empty_database(
    instance: ContentInstance, content: ContentClient
) -> None:
    await seed_sample_content(instance.service)
    reply = await content.http(content.subjects.content_public_bundle)
    assert list(reply.body["data"]) == [
        "about", "contact", "project", "experience", "education", "skill",
    ]  # fmt: skip


async def test_sample_portfolio_is_not_loaded_into_a_database_with_rows(
    instance: ContentInstance, content: ContentClient
) -> None:
    await publish(content, "project", "Mine")
    await seed_sample_content(instance.service)
    reply = await content.http(content.subjects.content_public_bundle)
    assert list(reply.body["data"]) == ["project"]


async def test_search_ranks_title_matches_first(content: ContentClient) -> None:
    title_hit = await publish(content, "project", "Tide tables")
    await content.create(
        {
            "type": "project",
            "data": {"title": "Other", "summary": "mentions tide once"},
            "status": "published",
        }
    )
    results = await content.call(content.subjects.content_search, query={"q": "tide"})
    assert next(result["id"] for result in results) == title_hit


async def test_search_skips_unpublished_items(content: ContentClient) -> None:
    await content.create({"type": "project", "data": {"title": "Secret tide"}})
    results = await content.call(content.subjects.content_search, query={"q": "tide"})
    assert results == []


async def test_search_without_text_is_400(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError):
        await content.call(content.subjects.content_search, query={"q": " "})


async def test_types_count_published_items(content: ContentClient) -> None:
    await publish(content, "project", "A", sortOrder=1)
    await publish(content, "project", "B", sortOrder=1)
    await publish(content, "about", "C", sortOrder=0)
    await content.create({"type": "draft-only", "data": {"title": "D"}})
    types = await content.call(content.subjects.content_types)
    assert types == [{"type": "about", "count": 1}, {"type": "project", "count": 2}]
