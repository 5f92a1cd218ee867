"""Matching a request path to its route template, for metric labels.

Litestar records the template of the route it chose (``path_template``), but
responses sent before routing (a 429 or a 413 from the edge layer, an unknown
path) have none. ``RouteTemplates`` finds the template such a path would have
matched, so labels stay templates (``/api/v1/content/{type}/{slug}``) and never
raw paths with ids in them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["UNMATCHED_ROUTE", "RouteTemplates"]

UNMATCHED_ROUTE = "unmatched"
"""Route label of a request whose path matches no route."""


class RouteTemplates:
    """The route templates of an app (``{name}`` or ``{name:type}`` placeholders)."""

    def __init__(self, templates: Iterable[str]) -> None:
        patterns = []
        for template in set(templates):
            segments = [part for part in template.split("/") if part]
            patterns.append((template, segments))
        # Most literal segments first, so ``/content/bundle`` wins over ``/content/{type}``.
        patterns.sort(key=lambda item: -sum(not part.startswith("{") for part in item[1]))
        self._patterns = patterns

    def match(self, path: str) -> str:
        """Return the template ``path`` matches (case-insensitively), or ``UNMATCHED_ROUTE``."""
        segments = [part for part in path.split("/") if part]
        for template, pattern in self._patterns:
            if _matches(pattern, segments):
                return _display(template)
        return UNMATCHED_ROUTE


def _matches(pattern: list[str], segments: list[str]) -> bool:
    for index, part in enumerate(pattern):
        if part.startswith("{") and part.endswith(":path}"):
            return True
        if index >= len(segments):
            return False
        if not part.startswith("{") and part.lower() != segments[index].lower():
            return False
    return len(pattern) == len(segments)


def _display(template: str) -> str:
    """``/a/{id:str}`` as ``/a/{id}``, the form Litestar reports in ``path_template``."""
    parts = []
    for part in template.split("/"):
        if part.startswith("{") and ":" in part:
            part = part.split(":", 1)[0] + "}"
        parts.append(part)
    return "/".join(parts) or "/"
