"""Strong ETags of public content responses, and ``If-None-Match`` matching.

An ETag names the exact set of item versions a response contains. Every change
to an item bumps its version and a deleted item drops out. So two responses
with the same (type, id, version) sequence have byte-identical data.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["content_etag", "if_none_match_hits"]


def _item_token(item: Any) -> str | None:
    if isinstance(item, dict) and "id" in item and "version" in item:
        return f"{item.get('type', '')}/{item['id']}@{item['version']}"
    return None


def content_etag(data: Any, body: bytes) -> str:
    """Return a strong ETag for a public content response whose value under ``data`` is ``data``.

    Items, lists of items and bundles (type to list) are named by their item
    versions; anything else by a hash of ``body``.
    """
    tokens: list[str] = []
    if isinstance(data, list):
        tokens.append("list")
        tokens.extend(token for token in map(_item_token, data) if token is not None)
    elif isinstance(data, dict) and _item_token(data) is not None:
        tokens.append("item")
        tokens.append(_item_token(data) or "")
    elif isinstance(data, dict) and all(isinstance(value, list) for value in data.values()):
        tokens.append("bundle")
        for content_type, items in data.items():
            tokens.append(f"type:{content_type}")
            tokens.extend(token for token in map(_item_token, items) if token is not None)
    else:
        return '"b-' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return '"v-' + hashlib.sha256("\n".join(tokens).encode()).hexdigest()[:32] + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """Return whether an ``If-None-Match`` header matches ``etag`` (weak comparison, ``*`` and lists)."""
    if not header:
        return False
    wanted = _opaque(etag)
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or _opaque(candidate) == wanted:
            return True
    return False
