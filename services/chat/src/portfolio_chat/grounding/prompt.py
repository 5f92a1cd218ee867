"""The system prompt, built from published content and rebuilt when content changes.

``GroundingCache`` contains one snapshot of the published portfolio (fetched as
the content service's bundle): the system prompt that embeds it, the owner's
public contact addresses (which output redaction keeps) and the flat item list
offline mode searches when the content service cannot. A ``ContentChanged``
event marks the snapshot stale, and the next chat turn fetches a fresh one, so
answers follow edits without a restart. While the content service is
unreachable the last snapshot stays in use.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portfolio_shared.errors import PortfolioError
from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from portfolio_chat.grounding.content_client import ContentClient

__all__ = ["Grounding", "GroundingCache", "build_system_prompt"]

log = get_logger("chat.grounding")

INSTRUCTIONS = """\
You are the assistant on a personal portfolio website. Visitors ask about the \
portfolio owner's work, projects, experience and skills. Answer from the \
portfolio content below and from the tools, which read the same published \
content; do not invent facts. When the content does not answer a question, \
say so briefly and suggest what the visitor could ask instead. Keep answers \
short and friendly. Share no personal contact details other than the public \
contact address in the content."""

UNLOADED_NOTE = (
    "The published portfolio content could not be loaded just now; read it with the tools."
)
"""What the prompt says in place of the content before the first successful fetch."""

REFRESH_RETRY_S = 5.0
"""Pause after a failed content fetch before the next turn tries again, in seconds, so an
unreachable content service does not add a request timeout to every turn."""

EMAIL_KEYS = ("email", "contactEmail", "contact_email")
"""Keys of a ``contact`` item's data that contain the owner's public address."""


@dataclass(frozen=True)
class Grounding:
    """One snapshot of published content, ready for prompts, redaction and offline search."""

    prompt: str
    owner_emails: frozenset[str] = frozenset()
    items: tuple[dict[str, Any], ...] = ()
    loaded: bool = False
    """False until content was fetched once; the prompt then has instructions only."""


def build_system_prompt(bundle: dict[str, list[dict[str, Any]]], *, max_chars: int) -> str:
    """Return the instructions followed by every published item, within ``max_chars``."""
    lines: list[str] = []
    used = 0
    for content_type, items in bundle.items():
        for item in items:
            line = f"- [{content_type}/{item.get('slug', '')}] " + json.dumps(
                item.get("data", {}), ensure_ascii=False, separators=(",", ":")
            )
            if used + len(line) > max_chars:
                lines.append("- (more items exist; use the tools to read them)")
                return _assemble(lines)
            lines.append(line)
            used += len(line) + 1
    return _assemble(lines)


def _assemble(lines: list[str]) -> str:
    if not lines:
        return INSTRUCTIONS + "\n\nNo portfolio content is published yet."
    return INSTRUCTIONS + "\n\nPublished portfolio content ([type/slug] data):\n" + "\n".join(lines)


def owner_emails(bundle: dict[str, list[dict[str, Any]]]) -> frozenset[str]:
    """Return the addresses published in ``contact`` items."""
    found: set[str] = set()
    for item in bundle.get("contact", []):
        data = item.get("data")
        if not isinstance(data, dict):
            continue
        for key in EMAIL_KEYS:
            value = data.get(key)
            if isinstance(value, str) and "@" in value:
                found.add(value.strip().lower())
    return frozenset(found)


@dataclass
class GroundingCache:
    """The current snapshot; ``invalidate`` on content events, ``current`` before each turn."""

    content: ContentClient
    max_chars: int
    extra_owner_emails: frozenset[str] = frozenset()
    _snapshot: Grounding = field(init=False)
    _stale: bool = field(init=False, default=True)
    _generation: int = field(init=False, default=0)
    _lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    _next_attempt: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._snapshot = Grounding(
            INSTRUCTIONS + "\n\n" + UNLOADED_NOTE, owner_emails=self.extra_owner_emails
        )

    def invalidate(self, reason: str) -> None:
        """Mark the snapshot stale; the next ``current`` call fetches content again."""
        self._generation += 1
        self._stale = True
        self._next_attempt = 0.0
        log.info("grounding marked stale", reason=reason, generation=self._generation)

    async def current(self) -> Grounding:
        """Return a fresh snapshot, fetching one if stale (one fetch at a time)."""
        if not self._stale or time.monotonic() < self._next_attempt:
            return self._snapshot
        async with self._lock:
            if self._stale and time.monotonic() >= self._next_attempt:
                await self._refresh()
        return self._snapshot

    async def _refresh(self) -> None:
        generation = self._generation
        try:
            bundle = await self.content.bundle()
        except PortfolioError as error:
            self._next_attempt = time.monotonic() + REFRESH_RETRY_S
            log.warning(
                "content fetch for grounding failed, keeping the previous snapshot",
                error=error.message,
                retry_in_s=REFRESH_RETRY_S,
            )
            return
        self._snapshot = Grounding(
            prompt=build_system_prompt(bundle, max_chars=self.max_chars),
            owner_emails=owner_emails(bundle) | self.extra_owner_emails,
            items=tuple(
                {**item, "type": item.get("type", content_type)}
                for content_type, items in bundle.items()
                for item in items
            ),
            loaded=True,
        )
        # An event that arrived during the fetch may describe a change the fetch missed.
        self._stale = generation != self._generation
        log.info(
            "grounding refreshed",
            items=len(self._snapshot.items),
            prompt_chars=len(self._snapshot.prompt),
        )
