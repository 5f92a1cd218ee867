"""Slugs derived from titles, and the suffixes that make them unique within a type."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from portfolio_content.content.validation import MAX_NAME_LENGTH

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["MAX_NUMBERED_SUFFIX", "candidate_slugs", "slugify"]

MAX_NUMBERED_SUFFIX = 100
"""Highest ``-<n>`` suffix tried before falling back to ``-<epoch ms>``."""

_NOT_ALLOWED = re.compile(r"[^a-z0-9-]")
_DASH_RUNS = re.compile(r"-{2,}")


def slugify(title: str) -> str:
    """``My Cool Project!`` → ``my-cool-project``, at most 100 characters, maybe empty."""
    slug = _DASH_RUNS.sub("-", _NOT_ALLOWED.sub("-", title.lower())).strip("-")
    return slug[:MAX_NAME_LENGTH].rstrip("-")


def _with_suffix(base: str, suffix: str) -> str:
    room = MAX_NAME_LENGTH - len(suffix)
    return base[:room].rstrip("-") + suffix


def candidate_slugs(base: str) -> Iterator[str]:
    """``base``, then ``base-1`` … ``base-100``, then ``base-<epoch ms>``; each within 100 characters."""
    yield base
    for number in range(1, MAX_NUMBERED_SUFFIX + 1):
        yield _with_suffix(base, f"-{number}")
    yield _with_suffix(base, f"-{int(time.time() * 1000)}")
