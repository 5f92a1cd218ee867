"""Wire shapes of content items and history entries, and the tags that identify versions.

Items are ``{"id","type","slug","data","status","version","sortOrder",
"createdAt","updatedAt","deletedAt"}`` in that order; history entries are
``{"id","contentId","version","data","changeType","changedBy","changeSummary",
"createdAt"}`` with ``data`` as a JSON object.

Admin replies carry ``ETag: "v<version>"``. A client sends it back in
``If-Match`` (``W/"v3"``, ``"3"`` and ``*`` are accepted too), so a change
based on a stale read is rejected. Public replies carry a strong ETag: the MD5
of the compact JSON of the value under ``data``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from portfolio_shared.errors import BadRequestError

if TYPE_CHECKING:
    from portfolio_content.db.database import Row

__all__ = [
    "compact_json",
    "content_etag",
    "history_to_wire",
    "parse_if_match",
    "public_etag",
    "row_to_wire",
]

_ETAG_VERSION = re.compile(r'^(?:W/)?"v?(\d{1,9})"$|^v?(\d{1,9})$')


def compact_json(value: Any) -> str:
    """JSON without spaces, keys in their stored order, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def row_to_wire(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "type": row["type"],
        "slug": row["slug"],
        "data": json.loads(row["data"]),
        "status": row["status"],
        "version": row["version"],
        "sortOrder": row["sort_order"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "deletedAt": row["deleted_at"],
    }


def history_to_wire(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "contentId": row["content_id"],
        "version": row["version"],
        "data": json.loads(row["data"]),
        "changeType": row["change_type"],
        "changedBy": row["changed_by"],
        "changeSummary": row["change_summary"],
        "createdAt": row["created_at"],
    }


def content_etag(version: int) -> str:
    """Return the ETag of one admin item at ``version``, e.g. ``"v3"``."""
    return f'"v{version}"'


def public_etag(data: Any) -> str:
    """Compute the strong ETag of a public reply: the quoted MD5 of its compact JSON."""
    return '"' + hashlib.md5(compact_json(data).encode(), usedforsecurity=False).hexdigest() + '"'


def parse_if_match(header: str | None) -> set[int] | None:
    """Versions an ``If-Match`` header accepts; None when absent or ``*`` (any version).

    A value that is not a list of ``"v<n>"`` tags is a 400.
    """
    if header is None or header.strip() in ("", "*"):
        return None
    versions: set[int] = set()
    for part in header.split(","):
        match = _ETAG_VERSION.match(part.strip())
        if match is None:
            raise BadRequestError(
                f'If-Match must be an ETag this API sent, such as "v3"; received {header[:60]!r}'
            )
        versions.add(int(match.group(1) or match.group(2)))
    return versions
