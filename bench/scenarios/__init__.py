"""One module per kind of measurement; each takes a running system and returns results."""

from __future__ import annotations

__all__: list[str] = []
