"""Input rules and their messages, without servers."""

from __future__ import annotations

import pytest
from portfolio_content.content.model import parse_if_match, public_etag
from portfolio_content.content.slugs import candidate_slugs, slugify
from portfolio_content.content.validation import (
    parse_boolean,
    validate_admin_list_query,
    validate_content_id,
    validate_create,
    validate_item_params,
    validate_page_query,
    validate_restore,
    validate_update,
)
from portfolio_shared.errors import BadRequestError, ValidationFailedError


def fields_of(error: pytest.ExceptionInfo[ValidationFailedError]) -> dict[str, list[str]]:
    return error.value.fields


def test_create_defaults_status_to_draft_and_sort_order_to_zero() -> None:
    item = validate_create({"type": "project", "data": {"title": "X"}})
    assert (item.status, item.sort_order, item.slug) == ("draft", 0, None)


@pytest.mark.parametrize(
    ("body", "field", "messages"),
    [
        ({"data": {"a": 1}}, "type", ["Required"]),
        ({"type": "project"}, "data", ["Required"]),
        ({"type": 5, "data": {"a": 1}}, "type", ["Expected string, received number"]),
        (
            {"type": "Project!", "data": {"a": 1}},
            "type",
            ["Type must be lowercase alphanumeric with hyphens only"],
        ),
        (
            {"type": "p", "slug": "", "data": {"a": 1}},
            "slug",
            [
                "String must contain at least 1 character(s)",
                "Slug must be lowercase alphanumeric with hyphens only",
            ],
        ),
        (
            {"type": "p", "slug": "a" * 101, "data": {"a": 1}},
            "slug",
            ["String must contain at most 100 character(s)"],
        ),
        ({"type": "p", "data": {}}, "data", ["Data must not be empty"]),
        ({"type": "p", "data": []}, "data", ["Expected object, received array"]),
        (
            {"type": "p", "data": {"a": 1}, "status": "live"},
            "status",
            ["Invalid enum value. Expected 'draft' | 'published' | 'archived', received 'live'"],
        ),
        (
            {"type": "p", "data": {"a": 1}, "sortOrder": 1.5},
            "sortOrder",
            ["Expected integer, received float"],
        ),
        (
            {"type": "p", "data": {"a": 1}, "sortOrder": "1"},
            "sortOrder",
            ["Expected number, received string"],
        ),
        (
            {"type": "p", "data": {"a": 1}, "sortOrder": True},
            "sortOrder",
            ["Expected number, received boolean"],
        ),
    ],
)
def test_create_rejects_each_broken_field_with_its_message(
    body: dict[str, object], field: str, messages: list[str]
) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid request body") as error:
        validate_create(body)
    assert fields_of(error)[field] == messages


def test_array_body_is_a_root_validation_error() -> None:
    with pytest.raises(ValidationFailedError) as error:
        validate_create([1, 2])
    assert fields_of(error) == {"_root": ["Expected object, received array"]}


def test_primitive_body_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="Malformed request body"):
        validate_create("text")


def test_unknown_body_keys_are_dropped() -> None:
    item = validate_create({"type": "p", "data": {"a": 1}, "extra": True})
    assert item.type == "p"


def test_update_accepts_empty_data_object() -> None:
    assert validate_update({"data": {}}).data == {}


def test_update_rejects_version_below_one() -> None:
    with pytest.raises(ValidationFailedError) as error:
        validate_update({"version": 0})
    assert fields_of(error)["version"] == ["Number must be greater than or equal to 1"]


def test_restore_requires_a_version() -> None:
    with pytest.raises(ValidationFailedError) as error:
        validate_restore({})
    assert fields_of(error) == {"version": ["Required"]}


def test_content_id_must_start_with_prefix() -> None:
    with pytest.raises(ValidationFailedError, match="Invalid content ID") as error:
        validate_content_id({"id": "abc"})
    assert fields_of(error) == {"id": ['Invalid input: must start with "content_"']}


def test_item_params_are_checked_by_pattern() -> None:
    with pytest.raises(ValidationFailedError, match="Invalid parameters"):
        validate_item_params({"type": "project", "slug": "Bad Slug"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("1", True), ("false", False), ("0", False), (None, False)],
)
def test_booleans_parse_true_false_one_zero(raw: str | None, expected: bool) -> None:
    assert parse_boolean("hard", raw, default=False) is expected


def test_other_boolean_values_are_a_400_naming_the_parameter() -> None:
    with pytest.raises(ValidationFailedError, match="Invalid query parameters") as error:
        parse_boolean("hard", "yes", default=False)
    assert list(fields_of(error)) == ["hard"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"limit": "abc"}, "limit", "Expected number, received nan"),
        ({"limit": "0"}, "limit", "Number must be greater than or equal to 1"),
        ({"limit": "101"}, "limit", "Number must be less than or equal to 100"),
        ({"limit": "2.5"}, "limit", "Expected integer, received float"),
        ({"offset": "-1"}, "offset", "Number must be greater than or equal to 0"),
        (
            {"includeDeleted": "maybe"},
            "includeDeleted",
            "Expected true, false, 1 or 0, received 'maybe'",
        ),
        (
            {"status": "x"},
            "status",
            "Invalid enum value. Expected 'draft' | 'published' | 'archived', received 'x'",
        ),
    ],
)
def test_admin_list_query_rejects_bad_values(
    query: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid query parameters") as error:
        validate_admin_list_query(query)
    assert fields_of(error)[field] == [message]


def test_page_query_defaults_to_fifty_from_zero() -> None:
    page = validate_page_query({})
    assert (page.limit, page.offset) == (50, 0)


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("My Cool Project!", "my-cool-project"),
        ("  --Hello   World--  ", "hello-world"),
        ("Ärger im Büro", "rger-im-b-ro"),
        ("!!!", ""),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_derived_slug_is_capped_at_one_hundred_characters() -> None:
    assert len(slugify("word " * 60)) <= 100


def test_suffixed_candidates_stay_within_one_hundred_characters() -> None:
    candidates = list(candidate_slugs("a" * 100))
    assert max(len(candidate) for candidate in candidates) == 100


def test_candidates_go_from_plain_to_numbered_to_timestamp() -> None:
    candidates = list(candidate_slugs("post"))
    assert candidates[:3] == ["post", "post-1", "post-2"]
    assert candidates[100] == "post-100"
    assert candidates[101].startswith("post-")
    assert len(candidates) == 102


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        ('"v3"', {3}),
        ('W/"v3"', {3}),
        ('"3"', {3}),
        ('"v2", "v4"', {2, 4}),
        ("*", None),
        (None, None),
    ],
)
def test_if_match_accepts_version_tags(header: str | None, versions: set[int] | None) -> None:
    assert parse_if_match(header) == versions


def test_if_match_rejects_foreign_tags() -> None:
    with pytest.raises(BadRequestError, match="If-Match"):
        parse_if_match('"abc123"')


def test_public_etag_is_the_md5_of_compact_json() -> None:
    assert public_etag({"a": 1}) == '"bb6cb5c68df4652941caf652a366f2d8"'
