"""Request bodies and query parameters of the content routes, for the OpenAPI document.

The gateway forwards bodies and queries as received; the content service
validates them and owns the rules. These schemas only describe what it
accepts, so that clients and fuzzers can build valid requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Parameter, RequestBody, Schema

if TYPE_CHECKING:
    from litestar.openapi.spec import OpenAPI, Operation

__all__ = ["document_content_inputs"]

_NAME = Schema(type=OpenAPIType.STRING, pattern="^[a-z0-9-]+$", min_length=1, max_length=100)
_STATUS = Schema(type=OpenAPIType.STRING, enum=["draft", "published", "archived"])
_DATA = Schema(type=OpenAPIType.OBJECT, min_properties=1, additional_properties=True)
_INTEGER = Schema(type=OpenAPIType.INTEGER)
_VERSION = Schema(type=OpenAPIType.INTEGER, minimum=1)
_BOOLEAN_TEXT = Schema(type=OpenAPIType.STRING, enum=["true", "false", "1", "0"])
_LIMIT = Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=100)
_OFFSET = Schema(type=OpenAPIType.INTEGER, minimum=0)

_CREATE = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        "type": _NAME,
        "slug": _NAME,
        "data": _DATA,
        "status": _STATUS,
        "sortOrder": _INTEGER,
    },
    required=["type", "data"],
    description="A new item; a missing slug is derived from `data.title`.",
)
_UPDATE = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        "slug": _NAME,
        "data": Schema(type=OpenAPIType.OBJECT, additional_properties=True),
        "status": _STATUS,
        "sortOrder": _INTEGER,
        "version": _VERSION,
    },
    description="Fields to change; a stale `version` (or `If-Match`) is rejected.",
)
_RESTORE = Schema(
    type=OpenAPIType.OBJECT,
    properties={"version": _VERSION},
    required=["version"],
    description="The version whose data becomes the new version.",
)


def _json_body(schema: Schema) -> RequestBody:
    return RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)


def _query(name: str, schema: Schema, description: str) -> Parameter:
    return Parameter(name=name, param_in="query", schema=schema, description=description)


def _header(name: str, description: str) -> Parameter:
    return Parameter(
        name=name,
        param_in="header",
        schema=Schema(type=OpenAPIType.STRING),
        description=description,
    )


_IDEMPOTENCY_KEY = _header("Idempotency-Key", "Retrying with the same key replays the first reply.")
_IF_MATCH = _header("If-Match", 'The ETag of the version the change is based on, e.g. `"v3"`.')
_PAGE = [
    _query("limit", _LIMIT, "Items per page (default 50)."),
    _query("offset", _OFFSET, "Items to skip (default 0)."),
]


def _add(operation: Operation | None, *parameters: Parameter, body: Schema | None = None) -> None:
    if operation is None:
        return
    operation.parameters = [*(operation.parameters or []), *parameters]
    if body is not None:
        operation.request_body = _json_body(body)


def document_content_inputs(document: OpenAPI) -> None:
    """Add the content routes' request bodies, query parameters and headers to ``document``."""
    paths = document.paths or {}
    public_list = paths.get("/api/v1/content")
    admin_list = paths.get("/api/v1/admin/content")
    admin_item = paths.get("/api/v1/admin/content/{content_id}")
    history = paths.get("/api/v1/admin/content/{content_id}/history")
    restore = paths.get("/api/v1/admin/content/{content_id}/restore")

    if public_list is not None:
        _add(
            public_list.get,
            _query("type", _NAME, "Only items of this type."),
            _query(
                "status",
                _STATUS,
                "Accepted and ignored: public lists contain published items only.",
            ),
        )
    if admin_list is not None:
        _add(
            admin_list.get,
            _query("type", _NAME, "Only items of this type."),
            _query("status", _STATUS, "Only items in this status."),
            _query("includeDeleted", _BOOLEAN_TEXT, "Include soft-deleted items."),
            *_PAGE,
        )
        _add(admin_list.post, _IDEMPOTENCY_KEY, body=_CREATE)
    if admin_item is not None:
        _add(admin_item.put, _IDEMPOTENCY_KEY, _IF_MATCH, body=_UPDATE)
        _add(
            admin_item.delete,
            _query("hard", _BOOLEAN_TEXT, "Remove the row and its history instead of hiding it."),
            _IDEMPOTENCY_KEY,
            _IF_MATCH,
        )
    if history is not None:
        _add(history.get, *_PAGE)
    if restore is not None:
        _add(restore.post, _IDEMPOTENCY_KEY, _IF_MATCH, body=_RESTORE)
