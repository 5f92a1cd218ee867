"""Messages of a streamed chat turn, published by the chat service to the
subject the gateway named in ``ServiceRequest.stream_to``.

The stream is zero or more ``ChatToken`` messages, then exactly one
``ChatStreamDone`` (carrying the same fields as the JSON reply) or one
``ChatStreamError``. ``seq`` numbers tokens from 0 so the gateway can detect a gap.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "ChatStreamDone",
    "ChatStreamError",
    "ChatStreamMessage",
    "ChatToken",
    "decode_stream_message",
]


class ChatToken(msgspec.Struct, kw_only=True, tag="chat.token.v1", tag_field="schema"):
    seq: int
    text: str


class ChatStreamDone(msgspec.Struct, kw_only=True, tag="chat.done.v1", tag_field="schema"):
    seq: int
    reply: dict[str, Any]
    """The same object ``POST /api/v1/chat`` returns as JSON."""


class ChatStreamError(msgspec.Struct, kw_only=True, tag="chat.error.v1", tag_field="schema"):
    seq: int
    error: dict[str, Any]
    """A wire error: ``code``, ``message`` and optional ``retryAfter``."""


ChatStreamMessage = ChatToken | ChatStreamDone | ChatStreamError

_decoder = msgspec.json.Decoder(ChatStreamMessage)


def decode_stream_message(payload: bytes) -> ChatStreamMessage:
    return _decoder.decode(payload)
