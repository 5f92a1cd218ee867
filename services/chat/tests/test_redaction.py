"""Output redaction, whole and streamed."""

from __future__ import annotations

import pytest
from portfolio_chat.conversation.redaction import Redactor, StreamRedactor

OWNER = "ada@example.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob@corp.example now", "mail [REDACTED EMAIL] now"),
        (f"mail {OWNER} now", f"mail {OWNER} now"),
        ("mail ADA@Example.com now", "mail ADA@Example.com now"),
        ("call +1 (555) 123-4567 today", "call [REDACTED PHONE] today"),
        ("call 555-123-4567 today", "call [REDACTED PHONE] today"),
        ("call 555.123.4567", "call [REDACTED PHONE]"),
        ("call +44 20 7946 0958", "call [REDACTED PHONE]"),
        ("call 555-1234", "call [REDACTED PHONE]"),
        ("ssn 123-45-6789.", "ssn [REDACTED SSN]."),
        ("worked there 2019-2023", "worked there 2019-2023"),
        ("released 2024-01-15", "released 2024-01-15"),
        ("version 3.11.7 and 42 stars", "version 3.11.7 and 42 stars"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert Redactor([OWNER]).redact(text) == expected


@pytest.mark.parametrize(
    "pieces",
    [
        ["Call +1 (5", "55) 123-", "4567 or mail b", "ob@corp.ex", "ample please."],
        ["Id 123", "-45-67", "89 and ", OWNER, " ok"],
        ["In 2020 ", "we built ", "things."],
        ["one ", "two ", "three"],
    ],
)
def test_streamed_text_matches_whole_redaction(pieces: list[str]) -> None:
    redactor = Redactor([OWNER])
    stream = StreamRedactor(redactor)

    released = "".join(stream.feed(piece) for piece in pieces) + stream.finish()

    assert released == redactor.redact("".join(pieces))


def test_stream_releases_completed_words_early() -> None:
    stream = StreamRedactor(Redactor())

    first = stream.feed("Hello ")

    assert first == "Hello "


def test_stream_holds_back_a_possible_phone_number() -> None:
    stream = StreamRedactor(Redactor())

    released = stream.feed("call 555 123 ")

    assert released == "call "
