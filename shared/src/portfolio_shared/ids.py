"""Prefixed random identifiers (``content_…``, ``hist_…``, ``sess_…``, ``msg_…``)."""

from __future__ import annotations

import secrets

__all__ = ["ID_ALPHABET", "ID_LENGTH", "new_id"]

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
"""The URL-safe alphabet of the random part, as nanoid uses it."""

ID_LENGTH = 21
"""Length of the random part: 126 bits, the nanoid default."""


def new_id(prefix: str) -> str:
    """Return ``<prefix>_`` followed by 21 random URL-safe characters."""
    return f"{prefix}_" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
