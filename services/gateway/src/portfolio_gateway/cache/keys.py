"""Cache keys of public content responses, and the keys one content change affects.

Keys (after ``REDIS_KEY_PREFIX``) all start with ``content:`` so the runbook's
``redis-cli KEYS "content:*"`` commands find them:

- ``content:list:<type or _all>:<status or _>`` for ``GET /api/v1/content``;
- ``content:item:<type>:<slug>`` for ``GET /api/v1/content/{type}/{slug}``;
- ``content:bundle`` for ``GET /api/v1/content/bundle``.

Only requests whose parameters the content service would accept are cached
(others get a 400 from it and are never stored), so the key space is the
valid types, slugs and statuses.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from portfolio_shared.contract import ContentChanged

__all__ = [
    "BUNDLE_KEY",
    "CACHE_NAMESPACE",
    "LIST_STATUSES",
    "affected_keys",
    "bundle_key",
    "item_key",
    "list_key",
]

CACHE_NAMESPACE = "content"
"""First token of every content cache key."""

BUNDLE_KEY = f"{CACHE_NAMESPACE}:bundle"

LIST_STATUSES = ("_", "draft", "published", "archived")
"""Values of the ``status`` query a list key can carry (``_`` for none)."""

_ALL_TYPES = "_all"
_SEGMENT = re.compile(r"[a-z0-9-]{1,100}")
_LIST_QUERY_KEYS = frozenset({"type", "status"})


def item_key(content_type: str, slug: str) -> str | None:
    """Key of one item, or ``None`` when the parameters are not valid (not cacheable)."""
    if not (_SEGMENT.fullmatch(content_type) and _SEGMENT.fullmatch(slug)):
        return None
    return f"{CACHE_NAMESPACE}:item:{content_type}:{slug}"


def list_key(query: Mapping[str, str]) -> str | None:
    """Key of a list for a query, or ``None`` when the query is not cacheable.

    Only ``type`` and ``status`` change a public list; other keys are ignored
    by the content service and so by the key.
    """
    content_type = query.get("type")
    status = query.get("status")
    if content_type is not None and not _SEGMENT.fullmatch(content_type):
        return None
    if status is not None and status not in LIST_STATUSES[1:]:
        return None
    return f"{CACHE_NAMESPACE}:list:{content_type or _ALL_TYPES}:{status or '_'}"


def bundle_key() -> str:
    return BUNDLE_KEY


def affected_keys(event: ContentChanged) -> list[str]:
    """Return every key whose response can change with ``event``: the item under its
    current and previous slug, each list that can hold the item, and the bundle."""
    keys: list[str] = []
    for slug in {event.slug, event.previous_slug}:
        if slug:
            key = item_key(event.content_type, slug)
            if key is not None:
                keys.append(key)
    for content_type in (event.content_type, _ALL_TYPES):
        keys.extend(f"{CACHE_NAMESPACE}:list:{content_type}:{status}" for status in LIST_STATUSES)
    keys.append(BUNDLE_KEY)
    return keys
