"""The NATS contract between services: subjects, request and reply schemas, events.

Both sides import from here; no module elsewhere builds a subject string or a
wire message by hand. Subjects carry a version token (``v1``) and messages a
``schema`` tag, so either can evolve without breaking running replicas.
"""

from portfolio_shared.contract.events import CacheFlushed, ChangeKind, ContentChanged, decode_event
from portfolio_shared.contract.messages import (
    Actor,
    CheckReport,
    CheckResult,
    ServiceRequest,
    decode_reply,
    encode_error,
    encode_reply,
)
from portfolio_shared.contract.replies import HttpReply
from portfolio_shared.contract.streaming import ChatStreamDone, ChatStreamError, ChatToken
from portfolio_shared.contract.subjects import Subjects

__all__ = [
    "Actor",
    "CacheFlushed",
    "ChangeKind",
    "ChatStreamDone",
    "ChatStreamError",
    "ChatToken",
    "CheckReport",
    "CheckResult",
    "ContentChanged",
    "HttpReply",
    "ServiceRequest",
    "Subjects",
    "decode_event",
    "decode_reply",
    "encode_error",
    "encode_reply",
]
