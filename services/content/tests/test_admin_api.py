"""The admin endpoints over real NATS against a real SQLite file."""

from __future__ import annotations

import pytest
import structlog.testing
from portfolio_shared.contract import Actor
from portfolio_shared.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)

from .conftest import ContentClient

pytestmark = pytest.mark.timeout(60)

ACTOR = Actor(key_fingerprint="0123456789ab", client_hash="c0ffee")


async def test_create_answers_201_with_version_one_and_etag(content: ContentClient) -> None:
    reply = await content.http(
        content.subjects.content_admin_create,
        body={"type": "project", "data": {"title": "My Cool Project!"}},
    )
    assert (reply.status, reply.body["data"]["version"], reply.headers["ETag"]) == (201, 1, '"v1"')


async def test_created_item_has_the_contract_shape(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "X"}, "sortOrder": 3})
    assert list(item) == [
        "id", "type", "slug", "data", "status", "version",
        "sortOrder", "createdAt", "updatedAt", "deletedAt",
    ]  # fmt: skip
    assert item["id"].startswith("content_")
    assert len(item["id"]) == len("content_") + 21
    assert (item["status"], item["sortOrder"], item["deletedAt"]) == ("draft", 3, None)


async def test_missing_slug_is_derived_from_title(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "My Cool Project!"}})
    assert item["slug"] == "my-cool-project"


async def test_taken_derived_slug_gets_a_numbered_suffix(content: ContentClient) -> None:
    await content.create({"type": "project", "data": {"title": "Same"}})
    second = await content.create({"type": "project", "data": {"title": "Same"}})
    assert second["slug"] == "same-1"


async def test_long_title_gives_a_slug_of_at_most_one_hundred_characters(
    content: ContentClient,
) -> None:
    item = await content.create({"type": "post", "data": {"title": "long title " * 30}})
    assert len(item["slug"]) <= 100


async def test_missing_slug_and_title_is_a_400_on_slug(content: ContentClient) -> None:
    with pytest.raises(
        ValidationFailedError, match=r"Slug is required when data\.title is not provided"
    ) as error:
        await content.create({"type": "project", "data": {"summary": "x"}})
    assert error.value.fields == {"slug": ["Required"]}


async def test_non_string_title_is_a_400_not_a_500(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError) as error:
        await content.create({"type": "project", "data": {"title": 42}})
    assert error.value.fields == {"data.title": ["Expected string, received number"]}


async def test_title_without_letters_or_digits_is_a_400(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError) as error:
        await content.create({"type": "project", "data": {"title": "!!!"}})
    assert "data.title" in error.value.fields


async def test_explicit_taken_slug_is_a_409(content: ContentClient) -> None:
    await content.create({"type": "project", "slug": "taken", "data": {"a": 1}})
    with pytest.raises(ConflictError, match="Slug 'taken' already exists for type 'project'"):
        await content.create({"type": "project", "slug": "taken", "data": {"a": 1}})


async def test_same_slug_in_another_type_is_allowed(content: ContentClient) -> None:
    await content.create({"type": "project", "slug": "shared", "data": {"a": 1}})
    item = await content.create({"type": "post", "slug": "shared", "data": {"a": 1}})
    assert item["slug"] == "shared"


async def test_invalid_body_lists_fields(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid request body") as error:
        await content.create({"type": "Bad Type", "data": {}})
    assert set(error.value.fields) == {"type", "data"}


async def test_get_returns_item_with_version_etag(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "X"}})
    reply = await content.http(content.subjects.content_admin_get, params={"id": item["id"]})
    assert (reply.body["data"], reply.headers["ETag"]) == (item, '"v1"')


async def test_get_of_unknown_id_is_404(content: ContentClient) -> None:
    with pytest.raises(NotFoundError, match="Content with identifier 'content_nope' not found"):
        await content.get("content_nope")


async def test_malformed_id_is_400(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid content ID"):
        await content.get("abc")


async def test_update_replaces_data_and_bumps_version(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A", "x": 1}})
    reply = await content.update(item["id"], {"data": {"title": "B"}, "status": "published"})
    updated = reply.body["data"]
    assert (updated["data"], updated["status"], updated["version"]) == (
        {"title": "B"},
        "published",
        2,
    )


async def test_empty_update_still_makes_a_new_version(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    reply = await content.update(item["id"], {})
    assert (reply.body["data"]["version"], reply.body["data"]["data"]) == (2, {"title": "A"})


async def test_update_to_a_slug_held_by_another_item_is_409(content: ContentClient) -> None:
    await content.create({"type": "project", "slug": "one", "data": {"a": 1}})
    other = await content.create({"type": "project", "slug": "two", "data": {"a": 1}})
    with pytest.raises(ConflictError, match="Slug 'one' already exists"):
        await content.update(other["id"], {"slug": "one"})


async def test_update_with_stale_if_match_is_412(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.update(item["id"], {"data": {"title": "B"}})
    with pytest.raises(PreconditionFailedError):
        await content.update(item["id"], {"data": {"title": "C"}}, if_match='"v1"')


async def test_update_with_current_if_match_succeeds(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    reply = await content.update(item["id"], {"data": {"title": "B"}}, if_match='"v1"')
    assert reply.body["data"]["version"] == 2


async def test_update_with_malformed_if_match_is_400(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    with pytest.raises(BadRequestError):
        await content.update(item["id"], {"data": {"title": "B"}}, if_match="garbage")


async def test_update_with_stale_body_version_is_409(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.update(item["id"], {"data": {"title": "B"}})
    with pytest.raises(ConflictError, match="based on version 1"):
        await content.update(item["id"], {"data": {"title": "C"}, "version": 1})


async def test_update_of_soft_deleted_item_is_404(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})
    with pytest.raises(NotFoundError):
        await content.update(item["id"], {"data": {"title": "B"}})


async def test_history_has_one_entry_per_version_newest_first(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.update(item["id"], {"data": {"title": "B"}})
    entries = await content.history(item["id"])
    assert [(entry["version"], entry["data"], entry["changeType"]) for entry in entries] == [
        (2, {"title": "B"}, "updated"),
        (1, {"title": "A"}, "created"),
    ]


async def test_history_entry_has_the_contract_shape(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}}, actor=ACTOR)
    entry = (await content.history(item["id"]))[0]
    assert list(entry) == [
        "id", "contentId", "version", "data", "changeType",
        "changedBy", "changeSummary", "createdAt",
    ]  # fmt: skip
    assert (entry["changedBy"], entry["changeSummary"]) == (
        "admin:0123456789ab",
        f"Created project: {item['slug']}",
    )


async def test_history_pages_with_limit_and_offset(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    for title in ("B", "C", "D"):
        await content.update(item["id"], {"data": {"title": title}})
    page = await content.history(item["id"], limit="2", offset="1")
    assert [entry["version"] for entry in page] == [3, 2]


async def test_history_of_unknown_item_is_404(content: ContentClient) -> None:
    with pytest.raises(NotFoundError):
        await content.history("content_missing")


async def test_restore_brings_back_old_data_as_a_new_version(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.update(item["id"], {"data": {"title": "B"}})
    reply = await content.http(
        content.subjects.content_admin_restore, params={"id": item["id"]}, body={"version": 1}
    )
    restored = reply.body["data"]
    assert (restored["data"], restored["version"]) == ({"title": "A"}, 3)


async def test_restore_writes_a_restored_history_entry(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.update(item["id"], {"data": {"title": "B"}})
    await content.call(
        content.subjects.content_admin_restore, params={"id": item["id"]}, body={"version": 1}
    )
    newest = (await content.history(item["id"]))[0]
    assert (newest["changeType"], newest["changeSummary"], newest["data"]) == (
        "restored",
        "Restored from version 1 to version 3",
        {"title": "A"},
    )


async def test_current_version_can_be_restored(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.update(item["id"], {"data": {"title": "B"}})
    reply = await content.http(
        content.subjects.content_admin_restore, params={"id": item["id"]}, body={"version": 2}
    )
    assert reply.body["data"]["data"] == {"title": "B"}


async def test_restore_of_unknown_version_is_404(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    with pytest.raises(NotFoundError, match=f"Version with identifier '{item['id']}@9' not found"):
        await content.call(
            content.subjects.content_admin_restore, params={"id": item["id"]}, body={"version": 9}
        )


async def test_soft_delete_answers_success_and_hides_from_default_list(
    content: ContentClient,
) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    reply = await content.http(content.subjects.content_admin_delete, params={"id": item["id"]})
    listed = await content.http(content.subjects.content_admin_list)
    assert reply.body == {"success": True}
    assert listed.body["data"] == []


async def test_soft_deleted_item_is_still_readable_by_id(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})
    stored = await content.get(item["id"])
    assert stored["deletedAt"] is not None


async def test_soft_delete_twice_is_404(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})
    with pytest.raises(NotFoundError):
        await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})


async def test_soft_deleted_item_listed_with_include_deleted(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})
    listed = await content.http(
        content.subjects.content_admin_list, query={"includeDeleted": "true"}
    )
    assert [entry["id"] for entry in listed.body["data"]] == [item["id"]]


async def test_include_deleted_false_means_false(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})
    listed = await content.http(
        content.subjects.content_admin_list, query={"includeDeleted": "false"}
    )
    assert listed.body["data"] == []


async def test_hard_delete_removes_item_and_history(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(
        content.subjects.content_admin_delete, params={"id": item["id"]}, query={"hard": "true"}
    )
    with pytest.raises(NotFoundError):
        await content.history(item["id"])


async def test_hard_delete_false_is_a_soft_delete(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(
        content.subjects.content_admin_delete, params={"id": item["id"]}, query={"hard": "false"}
    )
    assert (await content.get(item["id"]))["deletedAt"] is not None


async def test_hard_delete_of_soft_deleted_item_is_allowed(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    await content.call(content.subjects.content_admin_delete, params={"id": item["id"]})
    reply = await content.http(
        content.subjects.content_admin_delete, params={"id": item["id"]}, query={"hard": "1"}
    )
    assert reply.body == {"success": True}


async def test_hard_delete_with_invalid_boolean_is_400(content: ContentClient) -> None:
    item = await content.create({"type": "project", "data": {"title": "A"}})
    with pytest.raises(ValidationFailedError) as error:
        await content.call(
            content.subjects.content_admin_delete, params={"id": item["id"]}, query={"hard": "yes"}
        )
    assert list(error.value.fields) == ["hard"]


async def test_delete_of_unknown_item_is_404(content: ContentClient) -> None:
    with pytest.raises(NotFoundError):
        await content.call(content.subjects.content_admin_delete, params={"id": "content_none"})


async def test_admin_list_filters_by_type_and_status(content: ContentClient) -> None:
    await content.create({"type": "project", "data": {"title": "A"}, "status": "published"})
    draft = await content.create({"type": "project", "data": {"title": "B"}})
    await content.create({"type": "post", "data": {"title": "C"}})
    listed = await content.http(
        content.subjects.content_admin_list, query={"type": "project", "status": "draft"}
    )
    assert [entry["id"] for entry in listed.body["data"]] == [draft["id"]]


async def test_admin_list_pages_with_limit_and_offset(content: ContentClient) -> None:
    created = [
        await content.create({"type": "project", "data": {"title": t}, "sortOrder": n})
        for n, t in enumerate("ABC")
    ]
    listed = await content.http(
        content.subjects.content_admin_list, query={"limit": "1", "offset": "1"}
    )
    assert [entry["id"] for entry in listed.body["data"]] == [created[1]["id"]]


async def test_admin_list_with_bad_limit_is_400(content: ContentClient) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid query parameters"):
        await content.call(content.subjects.content_admin_list, query={"limit": "500"})


async def test_admin_write_logs_one_audit_line_with_the_key_fingerprint(
    content: ContentClient,
) -> None:
    with structlog.testing.capture_logs() as logs:
        item = await content.create(
            {"type": "project", "data": {"title": "A"}}, actor=ACTOR, request_id="req-1"
        )
    [line] = [entry for entry in logs if entry.get("event") == "admin action"]
    assert {key: line[key] for key in ("action", "content_id", "version")} == {
        "action": "create",
        "content_id": item["id"],
        "version": 1,
    }
    assert (line["key_fingerprint"], line["client_hash"], line["request_id"]) == (
        "0123456789ab",
        "c0ffee",
        "req-1",
    )
