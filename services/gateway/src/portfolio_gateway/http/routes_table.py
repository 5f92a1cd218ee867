"""Case-insensitive routing: rewrite a request path's literal segments to the
spelling of the route that matches it, leaving path parameters untouched.

Litestar matches paths case-sensitively; the contract requires
case-insensitive routes with an optional trailing slash. Parameters (ids,
slugs) keep their case, because ids are case-sensitive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["RouteTable"]


class RouteTable:
    """The route templates of an app, grouped by their number of segments."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._by_length: dict[int, list[tuple[str | None, ...]]] = {}
        for template in set(templates):
            segments = _segments(template)
            pattern = tuple(None if part.startswith("{") else part for part in segments)
            self._by_length.setdefault(len(pattern), []).append(pattern)
        for patterns in self._by_length.values():
            # Templates with more literal segments win over ones with parameters there.
            patterns.sort(key=lambda pattern: sum(part is None for part in pattern))

    def canonical(self, path: str) -> str:
        """Return ``path`` without a trailing slash and with its literal segments
        spelled as the first matching route spells them (``path`` itself if none matches)."""
        segments = _segments(path)
        for pattern in self._by_length.get(len(segments), ()):
            if all(
                literal is None or literal.lower() == segment.lower()
                for literal, segment in zip(pattern, segments, strict=True)
            ):
                rewritten = [
                    segment if literal is None else literal
                    for literal, segment in zip(pattern, segments, strict=True)
                ]
                return "/" + "/".join(rewritten)
        return "/" + "/".join(segments)


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]
