"""Offline replies: with no provider configured, reply with the best-matching content.

The question is searched with the content service's full-text search; when
that is unreachable, the published items of the grounding snapshot are
scored locally (query words found in the item's text, title hits counting
double). The reply says plainly that no language model wrote it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from portfolio_shared.errors import PortfolioError
from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from portfolio_chat.grounding.content_client import ContentClient
    from portfolio_chat.grounding.prompt import Grounding

__all__ = ["OFFLINE_LABEL", "OfflineResponder"]

log = get_logger("chat.offline")

OFFLINE_LABEL = "[Offline mode: no language model is configured, so this answer quotes the portfolio content that best matches your question.]"
"""First line of every offline reply."""

MATCHES_SHOWN = 3
EXCERPT_CHARS = 280
WORD = re.compile(r"[\w+#.-]{2,}")
STOP_WORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "with",
        "what",
        "has",
        "have",
        "she",
        "he",
        "they",
        "her",
        "his",
        "their",
        "you",
        "your",
        "about",
        "did",
        "does",
        "which",
        "who",
        "how",
        "any",
        "can",
        "tell",
        "me",
        "is",
        "of",
        "to",
        "in",
        "on",
        "a",
        "an",
        "it",
        "its",
        "this",
        "that",
        "from",
        "at",
        "by",
        "be",
        "or",
    ]
)


class OfflineResponder:
    """Builds a reply from content search results."""

    def __init__(self, content: ContentClient) -> None:
        self.content = content

    async def answer(self, question: str, grounding: Grounding) -> str:
        words = _query_words(question)
        matches: list[dict[str, Any]] = []
        if words:
            try:
                matches = await self.content.search(" ".join(words), limit=MATCHES_SHOWN)
            except PortfolioError as error:
                log.warning(
                    "content search failed, scoring the grounding snapshot", error=error.message
                )
                matches = _score_locally(words, grounding.items)[:MATCHES_SHOWN]
        if not matches:
            return (
                f"{OFFLINE_LABEL}\n\nI found nothing in the portfolio matching your question. "
                "Try asking about projects, experience or skills."
            )
        lines = [OFFLINE_LABEL, "", "Best matches in the portfolio:"]
        for item in matches[:MATCHES_SHOWN]:
            lines.append(f"- {_title(item)} ({item.get('type', 'item')}): {_excerpt(item)}")
        return "\n".join(lines)


def _query_words(question: str) -> list[str]:
    return [
        word
        for word in (match.group(0).strip(".-").lower() for match in WORD.finditer(question))
        if len(word) >= 2 and word not in STOP_WORDS
    ]


def _title(item: dict[str, Any]) -> str:
    data = item.get("data") if isinstance(item.get("data"), dict) else {}
    assert isinstance(data, dict)
    for key in ("title", "name", "role", "company"):
        if isinstance(data.get(key), str) and data[key].strip():
            return str(data[key]).strip()
    return str(item.get("slug", "untitled"))


def _excerpt(item: dict[str, Any]) -> str:
    data = item.get("data") if isinstance(item.get("data"), dict) else {}
    assert isinstance(data, dict)
    for key in ("summary", "description", "body", "content", "bio"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return _shorten(" ".join(value.split()))
    text = json.dumps(data, ensure_ascii=False)
    return _shorten(text)


def _shorten(text: str) -> str:
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[: EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _score_locally(words: list[str], items: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    scored: list[tuple[int, int, dict[str, Any]]] = []
    for position, item in enumerate(items):
        text = json.dumps(item.get("data", {}), ensure_ascii=False).lower()
        title = _title(item).lower()
        score = sum(text.count(word) + 2 * title.count(word) for word in words)
        if score > 0:
            scored.append((-score, position, item))
    scored.sort(key=lambda entry: (entry[0], entry[1]))
    return [item for _, _, item in scored]
