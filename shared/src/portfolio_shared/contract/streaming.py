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
    "ChatStreamCancel",
    "ChatStreamDone",
    "ChatStreamError",
    "ChatStreamMessage",
    "ChatToken",
    "decode_stream_message",
    "encode_stream_message",
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


class ChatStreamCancel(
    msgspec.Struct, kw_only=True, rename="camel", tag="chat.cancel.v1", tag_field="schema"
):
    """Published by the gateway on ``Subjects.chat_stream_cancel`` when a streaming client
    goes away; the chat instance running that stream stops it and its provider call."""

    stream_to: str
    """The ``streamTo`` subject of the stream to stop."""

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, payload: bytes) -> ChatStreamCancel:
        return msgspec.json.decode(payload, type=cls)


def encode_stream_message(message: ChatStreamMessage) -> bytes:
    return msgspec.json.encode(message)
