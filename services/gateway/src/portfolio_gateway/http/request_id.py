"""Request ids: the caller's own when it is a reasonable token, else a new UUIDv4."""

from __future__ import annotations

import re
import uuid

__all__ = ["REQUEST_ID_HEADER", "REQUEST_ID_PATTERN", "accept_request_id"]

REQUEST_ID_HEADER = "x-request-id"
"""HTTP header carrying the request id in both directions (lower case, as ASGI gives it)."""

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""Pattern a caller's request id must match to be echoed: letters, digits and ``._:-``."""


def accept_request_id(candidate: str | None) -> str:
    """Return ``candidate`` if it matches ``REQUEST_ID_PATTERN`` entirely, else a new UUIDv4."""
    if candidate is not None and REQUEST_ID_PATTERN.fullmatch(candidate):
        return candidate
    return str(uuid.uuid4())
