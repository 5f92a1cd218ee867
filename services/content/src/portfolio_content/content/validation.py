"""Input rules of the content API, with the messages of the HTTP contract.

Messages follow the wording of the earlier version's validation library
(``Required``, ``Expected string, received number``, ``String must contain at
most 100 character(s)``...), so frontends that show them keep working. Each
function returns the cleaned values or raises ``ValidationFailedError`` whose
``fields`` maps a dotted path (``_root`` for the body itself) to its messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from portfolio_shared.errors import BadRequestError, ValidationFailedError

__all__ = [
    "CONTENT_ID_PREFIX",
    "MAX_NAME_LENGTH",
    "STATUSES",
    "AdminListQuery",
    "CreateInput",
    "PageQuery",
    "UpdateInput",
    "json_type_name",
    "parse_boolean",
    "validate_admin_list_query",
    "validate_content_id",
    "validate_create",
    "validate_item_params",
    "validate_page_query",
    "validate_public_list_query",
    "validate_restore",
    "validate_search_query",
    "validate_update",
]

STATUSES = ("draft", "published", "archived")
"""Lifecycle states of an item; only ``published`` is public."""

MAX_NAME_LENGTH = 100
"""Maximum length of a type or slug, in characters."""

CONTENT_ID_PREFIX = "content_"

INTEGER_MAX = 2**63 - 1
"""Largest number a database ``INTEGER`` column holds (signed 64 bits); larger ones are a 400."""

INTEGER_MIN = -(2**63)
"""Smallest number a database ``INTEGER`` column holds."""

_NAME_PATTERN = re.compile(r"^[a-z0-9-]+$")
_INTEGER_PATTERN = re.compile(r"^\s*[+-]?\d+\s*$")
_NUMBER_PATTERN = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_ENUM_TEXT = " | ".join(f"'{status}'" for status in STATUSES)

_MISSING = object()


def json_type_name(value: Any) -> str:
    """Return the type name of a JSON value as validation messages spell it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Problems:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def raise_if_any(self, message: str) -> None:
        if self.fields:
            raise ValidationFailedError(message, fields=self.fields)


def _check_name(problems: _Problems, path: str, value: Any, label: str) -> str | None:
    if not isinstance(value, str):
        problems.add(path, f"Expected string, received {json_type_name(value)}")
        return None
    before = len(problems.fields.get(path, []))
    if len(value) < 1:
        problems.add(path, "String must contain at least 1 character(s)")
    if len(value) > MAX_NAME_LENGTH:
        problems.add(path, f"String must contain at most {MAX_NAME_LENGTH} character(s)")
    if not _NAME_PATTERN.match(value):
        problems.add(path, f"{label} must be lowercase alphanumeric with hyphens only")
    return value if len(problems.fields.get(path, [])) == before else None


def _check_status(problems: _Problems, path: str, value: Any) -> str | None:
    if not isinstance(value, str):
        problems.add(path, f"Expected {_ENUM_TEXT}, received {json_type_name(value)}")
        return None
    if value not in STATUSES:
        problems.add(path, f"Invalid enum value. Expected {_ENUM_TEXT}, received '{value}'")
        return None
    return value


def _check_integer(
    problems: _Problems, path: str, value: Any, *, minimum: int | None
) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(path, f"Expected number, received {json_type_name(value)}")
        return None
    if isinstance(value, float) and not value.is_integer():
        problems.add(path, "Expected integer, received float")
        return None
    number = int(value)
    lowest = INTEGER_MIN if minimum is None else minimum
    if number < lowest:
        problems.add(path, f"Number must be greater than or equal to {lowest}")
        return None
    if number > INTEGER_MAX:
        problems.add(path, f"Number must be less than or equal to {INTEGER_MAX}")
        return None
    return number


def _body_object(body: Any, problems: _Problems) -> dict[str, Any]:
    if body is None:
        return {}
    if isinstance(body, dict):
        return body
    if isinstance(body, list):
        problems.add("_root", "Expected object, received array")
        return {}
    raise BadRequestError("Malformed request body")


# Admin writes


@dataclass(frozen=True)
class CreateInput:
    type: str
    slug: str | None
    data: dict[str, Any]
    status: str
    sort_order: int


@dataclass(frozen=True)
class UpdateInput:
    slug: str | None
    data: dict[str, Any] | None
    status: str | None
    sort_order: int | None
    version: int | None
    """The version the client read, for optimistic concurrency."""


def _check_data(problems: _Problems, value: Any, *, non_empty: bool) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        problems.add("data", f"Expected object, received {json_type_name(value)}")
        return None
    if non_empty and not value:
        problems.add("data", "Data must not be empty")
        return None
    return value


def validate_create(body: Any) -> CreateInput:
    problems = _Problems()
    fields = _body_object(body, problems)
    problems.raise_if_any("Invalid request body")

    raw_type = fields.get("type", _MISSING)
    if raw_type is _MISSING:
        problems.add("type", "Required")
        content_type = None
    else:
        content_type = _check_name(problems, "type", raw_type, "Type")
    raw_slug = fields.get("slug", _MISSING)
    slug = None if raw_slug is _MISSING else _check_name(problems, "slug", raw_slug, "Slug")
    raw_data = fields.get("data", _MISSING)
    if raw_data is _MISSING:
        problems.add("data", "Required")
        data = None
    else:
        data = _check_data(problems, raw_data, non_empty=True)
    raw_status = fields.get("status", _MISSING)
    status = "draft" if raw_status is _MISSING else _check_status(problems, "status", raw_status)
    raw_sort = fields.get("sortOrder", _MISSING)
    sort_order = (
        0 if raw_sort is _MISSING else _check_integer(problems, "sortOrder", raw_sort, minimum=None)
    )
    problems.raise_if_any("Invalid request body")
    assert content_type is not None
    assert data is not None
    assert status is not None
    assert sort_order is not None
    return CreateInput(
        type=content_type, slug=slug, data=data, status=status, sort_order=sort_order
    )


def validate_update(body: Any) -> UpdateInput:
    problems = _Problems()
    fields = _body_object(body, problems)
    problems.raise_if_any("Invalid request body")

    raw_slug = fields.get("slug", _MISSING)
    slug = None if raw_slug is _MISSING else _check_name(problems, "slug", raw_slug, "Slug")
    raw_data = fields.get("data", _MISSING)
    data = None if raw_data is _MISSING else _check_data(problems, raw_data, non_empty=False)
    raw_status = fields.get("status", _MISSING)
    status = None if raw_status is _MISSING else _check_status(problems, "status", raw_status)
    raw_sort = fields.get("sortOrder", _MISSING)
    sort_order = (
        None
        if raw_sort is _MISSING
        else _check_integer(problems, "sortOrder", raw_sort, minimum=None)
    )
    raw_version = fields.get("version", _MISSING)
    version = (
        None
        if raw_version is _MISSING
        else _check_integer(problems, "version", raw_version, minimum=1)
    )
    problems.raise_if_any("Invalid request body")
    return UpdateInput(slug=slug, data=data, status=status, sort_order=sort_order, version=version)


def validate_restore(body: Any) -> int:
    """Return the version to restore from ``{"version": n}``."""
    problems = _Problems()
    fields = _body_object(body, problems)
    problems.raise_if_any("Invalid request body")
    raw_version = fields.get("version", _MISSING)
    if raw_version is _MISSING:
        problems.add("version", "Required")
        version = None
    else:
        version = _check_integer(problems, "version", raw_version, minimum=1)
    problems.raise_if_any("Invalid request body")
    assert version is not None
    return version


# Path parameters


def validate_content_id(params: dict[str, str]) -> str:
    content_id = params.get("id", "")
    if not content_id.startswith(CONTENT_ID_PREFIX):
        raise ValidationFailedError(
            "Invalid content ID",
            fields={"id": [f'Invalid input: must start with "{CONTENT_ID_PREFIX}"']},
        )
    return content_id


def validate_item_params(params: dict[str, str]) -> tuple[str, str]:
    problems = _Problems()
    content_type = _check_name(problems, "type", params.get("type", ""), "Type")
    slug = _check_name(problems, "slug", params.get("slug", ""), "Slug")
    problems.raise_if_any("Invalid parameters")
    assert content_type is not None
    assert slug is not None
    return content_type, slug


# Query strings


def parse_boolean(name: str, raw: str | None, *, default: bool) -> bool:
    """Parse ``true``/``false``/``1``/``0`` (absent or empty: ``default``); anything else is a 400."""
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValidationFailedError(
        "Invalid query parameters",
        fields={name: [f"Expected true, false, 1 or 0, received '{raw}'"]},
    )


def _query_integer(
    problems: _Problems,
    name: str,
    raw: str | None,
    *,
    default: int,
    minimum: int,
    maximum: int | None,
) -> int:
    if raw is None or raw == "":
        return default
    if not _NUMBER_PATTERN.match(raw):
        problems.add(name, "Expected number, received nan")
        return default
    if not _INTEGER_PATTERN.match(raw):
        problems.add(name, "Expected integer, received float")
        return default
    value = int(raw)
    highest = INTEGER_MAX if maximum is None else maximum
    if value < minimum:
        problems.add(name, f"Number must be greater than or equal to {minimum}")
    elif value > highest:
        problems.add(name, f"Number must be less than or equal to {highest}")
    return value


@dataclass(frozen=True)
class PageQuery:
    limit: int
    offset: int


@dataclass(frozen=True)
class AdminListQuery:
    type: str | None
    status: str | None
    include_deleted: bool
    limit: int
    offset: int


def _optional_query_name(problems: _Problems, query: dict[str, str], name: str) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    return _check_name(problems, name, raw, name.capitalize())


def _optional_query_status(problems: _Problems, query: dict[str, str]) -> str | None:
    raw = query.get("status")
    if raw is None:
        return None
    return _check_status(problems, "status", raw)


def validate_public_list_query(query: dict[str, str]) -> str | None:
    """Return the ``type`` filter; ``status`` is checked but public lists show published only."""
    problems = _Problems()
    content_type = _optional_query_name(problems, query, "type")
    _optional_query_status(problems, query)
    problems.raise_if_any("Invalid query parameters")
    return content_type


def validate_page_query(query: dict[str, str]) -> PageQuery:
    problems = _Problems()
    limit = _query_integer(
        problems, "limit", query.get("limit"), default=50, minimum=1, maximum=100
    )
    offset = _query_integer(
        problems, "offset", query.get("offset"), default=0, minimum=0, maximum=None
    )
    problems.raise_if_any("Invalid query parameters")
    return PageQuery(limit=limit, offset=offset)


def validate_admin_list_query(query: dict[str, str]) -> AdminListQuery:
    problems = _Problems()
    content_type = _optional_query_name(problems, query, "type")
    status = _optional_query_status(problems, query)
    try:
        include_deleted = parse_boolean(
            "includeDeleted", query.get("includeDeleted"), default=False
        )
    except ValidationFailedError as error:
        for path, messages in error.fields.items():
            for message in messages:
                problems.add(path, message)
        include_deleted = False
    limit = _query_integer(
        problems, "limit", query.get("limit"), default=50, minimum=1, maximum=100
    )
    offset = _query_integer(
        problems, "offset", query.get("offset"), default=0, minimum=0, maximum=None
    )
    problems.raise_if_any("Invalid query parameters")
    return AdminListQuery(
        type=content_type,
        status=status,
        include_deleted=include_deleted,
        limit=limit,
        offset=offset,
    )


def validate_search_query(query: dict[str, str]) -> tuple[str, str | None, int]:
    """Return the search text ``q``, an optional ``type`` and ``limit`` (1 to 50, default 10)."""
    problems = _Problems()
    text = query.get("q", "").strip()
    if not text:
        problems.add("q", "Required")
    elif len(text) > 200:
        problems.add("q", "String must contain at most 200 character(s)")
    content_type = _optional_query_name(problems, query, "type")
    limit = _query_integer(problems, "limit", query.get("limit"), default=10, minimum=1, maximum=50)
    problems.raise_if_any("Invalid query parameters")
    return text, content_type, limit
