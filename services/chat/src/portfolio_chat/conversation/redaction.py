"""Scrubbing of personal data from the assistant's output before it is stored or sent.

Replaced: e-mail addresses other than the owner's public contact addresses
(``[REDACTED EMAIL]``), national-id-like numbers in the ``123-45-6789`` form
(``[REDACTED SSN]``) and phone numbers (``[REDACTED PHONE]``).

Phone detection is a heuristic: a run of digit groups separated by single
spaces, dots or hyphens (with an optional ``+`` and parenthesised area code)
counts as a phone number when it contains at least ten digits, or seven in the
``555-1234`` form. Dates (``2024-01-15``) and year ranges (``2019-2023``) contain
fewer digits and are kept.

``StreamRedactor`` applies the same rules to text arriving in pieces: it holds
back the trailing word and any trailing run of digits, so a match split across
pieces is never sent half-scrubbed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Redactor", "StreamRedactor"]

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
PHONE = re.compile(
    r"(?<![\w+])\+?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){1,6}(?!\w)"
)
SHORT_PHONE = re.compile(r"^\d{3}[ .-]\d{4}$")
MIN_PHONE_DIGITS = 10

HELD_TAIL = re.compile(r"[\d+(][\d\s().+-]*$")
"""A trailing run of digits and phone separators that the next piece may extend."""


class Redactor:
    """Applies the rules, keeping the given owner addresses (compared case-insensitively)."""

    def __init__(self, allowed_emails: Iterable[str] = ()) -> None:
        self.allowed_emails = {email.strip().lower() for email in allowed_emails if email.strip()}

    def redact(self, text: str) -> str:
        text = EMAIL.sub(self._email, text)
        text = SSN.sub("[REDACTED SSN]", text)
        return PHONE.sub(_phone, text)

    def _email(self, match: re.Match[str]) -> str:
        if match.group(0).lower() in self.allowed_emails:
            return match.group(0)
        return "[REDACTED EMAIL]"


def _phone(match: re.Match[str]) -> str:
    candidate = match.group(0)
    digits = sum(character.isdigit() for character in candidate)
    if digits >= MIN_PHONE_DIGITS or SHORT_PHONE.match(candidate):
        return "[REDACTED PHONE]"
    return candidate


class StreamRedactor:
    """Redacts text that arrives in pieces, releasing only what later pieces cannot change."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._raw = ""
        self._sent = 0
        """Characters of redacted text already released."""

    def feed(self, piece: str) -> str:
        """Add a piece; return the newly releasable redacted text (may be empty)."""
        self._raw += piece
        cut = _safe_cut(self._raw)
        return self._release(self._redactor.redact(self._raw[:cut]))

    def finish(self) -> str:
        """Return whatever is left, redacted; call once after the last piece."""
        return self._release(self._redactor.redact(self._raw))

    @property
    def text(self) -> str:
        """The whole text so far, redacted."""
        return self._redactor.redact(self._raw)

    def _release(self, redacted: str) -> str:
        if len(redacted) <= self._sent:
            return ""
        fresh = redacted[self._sent :]
        self._sent = len(redacted)
        return fresh


def _safe_cut(raw: str) -> int:
    """Return where the releasable prefix of ``raw`` ends: before the last word and any
    trailing digit run, which a later piece could still turn into a match."""
    last_space = max(raw.rfind(" "), raw.rfind("\n"), raw.rfind("\t"))
    cut = last_space + 1
    tail = HELD_TAIL.search(raw[:cut])
    if tail is not None:
        cut = tail.start()
    return cut
