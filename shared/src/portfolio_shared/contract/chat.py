"""The chat request's rules, with the HTTP contract's validation messages.

The chat service owns these rules and enforces them on every request; the
gateway applies the same function before it spends a ``chat`` rate-limit
token, because only a valid request may spend one. Keeping the rules here
means both sides read one definition.

The body needs ``message`` (1 to 2000 characters) and ``visitorId`` (1 to 100
characters; the ``X-Visitor-Id`` header counts when the body has none), and
may carry ``sessionId`` (``sess_`` + 21 characters) to continue a session.
Unknown keys are ignored. Control characters other than tab and newline are
removed from the message after the length check, so a message of only
control characters and whitespace is ``blank``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portfolio_shared.errors import ValidationFailedError

if TYPE_CHECKING:
    from portfolio_shared.contract.messages import ServiceRequest

__all__ = ["ChatInput", "parse_flag", "received_type", "validate_chat_request"]

MESSAGE_MAX_CHARS = 2000
VISITOR_ID_MAX_CHARS = 100
SESSION_ID = re.compile(r"^sess_[A-Za-z0-9_-]{21}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 control characters except tab (\\x09) and newline (\\x0a)."""


@dataclass(frozen=True)
class ChatInput:
    """A valid chat request."""

    message: str
    """The message with control characters removed."""

    visitor_id: str
    session_id: str | None
    include_tool_calls: bool

    @property
    def blank(self) -> bool:
        """Whether nothing but whitespace is left, so a fixed reply is sent."""
        return not self.message.strip()


def received_type(value: Any) -> str:
    """Name a JSON value's type the way validation messages do (``array``, ``null``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_flag(query: dict[str, str], name: str) -> bool:
    """Return a boolean query parameter: ``true``/``1`` or ``false``/``0``; absent is false."""
    raw = query.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in {"true", "1"}:
        return True
    if raw.lower() in {"false", "0"}:
        return False
    raise ValidationFailedError(
        "Invalid query parameters",
        fields={name: [f"Expected true, false, 1 or 0, received '{raw}'"]},
    )


def validate_chat_request(request: ServiceRequest) -> ChatInput:
    """Return the checked input, or raise ``ValidationFailedError`` naming each bad field."""
    body = request.body if request.body is not None else {}
    if not isinstance(body, dict):
        raise ValidationFailedError(
            "Invalid request body",
            fields={"_root": [f"Expected object, received {received_type(body)}"]},
        )
    fields: dict[str, list[str]] = {}

    message = body.get("message")
    if message is None and "message" not in body:
        fields["message"] = ["Required"]
    elif not isinstance(message, str):
        fields["message"] = [f"Expected string, received {received_type(message)}"]
    elif len(message) < 1:
        fields["message"] = ["Message is required"]
    elif len(message) > MESSAGE_MAX_CHARS:
        fields["message"] = ["Message must be 2000 characters or less"]

    visitor_id = body.get("visitorId", request.visitor_id)
    if visitor_id is None and "visitorId" not in body:
        fields["visitorId"] = ["Required"]
    elif not isinstance(visitor_id, str):
        fields["visitorId"] = [f"Expected string, received {received_type(visitor_id)}"]
    elif len(visitor_id) < 1:
        fields["visitorId"] = ["Visitor ID is required"]
    elif len(visitor_id) > VISITOR_ID_MAX_CHARS:
        fields["visitorId"] = ["Visitor ID must be 100 characters or less"]
    elif CONTROL_CHARACTERS.search(visitor_id):
        fields["visitorId"] = ["Visitor ID must not contain control characters"]

    session_id = body.get("sessionId")
    if session_id is not None:
        if not isinstance(session_id, str):
            fields["sessionId"] = [f"Expected string, received {received_type(session_id)}"]
        elif not SESSION_ID.match(session_id):
            fields["sessionId"] = ["Invalid session ID format"]

    if fields:
        raise ValidationFailedError("Invalid request body", fields=fields)
    assert isinstance(message, str)
    assert isinstance(visitor_id, str)
    return ChatInput(
        message=CONTROL_CHARACTERS.sub("", message),
        visitor_id=visitor_id,
        session_id=session_id if isinstance(session_id, str) else None,
        include_tool_calls=parse_flag(request.query, "includeToolCalls"),
    )
