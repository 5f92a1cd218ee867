"""Admin endpoints over stored sessions: list, read with messages, end."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from portfolio_shared.errors import NotFoundError, ValidationFailedError
from portfolio_shared.logging import get_logger
from portfolio_shared.timeutil import utc_now

from portfolio_chat.conversation.turns import CHAT_SESSIONS_ACTIVE
from portfolio_chat.sessions.repository import (
    SESSION_STATUSES,
    message_view,
    session_view,
)

if TYPE_CHECKING:
    from portfolio_shared.contract import ServiceRequest

    from portfolio_chat.sessions.history import HistoryStore
    from portfolio_chat.sessions.repository import SessionRepository

__all__ = ["SessionAdmin"]

log = get_logger("chat.admin")

SESSION_ID = re.compile(r"^sess_[A-Za-z0-9_-]+$")
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 100

INTEGER_MAX = 2**63 - 1
"""Largest number a database ``INTEGER`` column holds (signed 64 bits); larger ones are a 400."""


class SessionAdmin:
    """Handlers of the ``chat_admin_sessions_*`` subjects."""

    def __init__(self, repository: SessionRepository, history: HistoryStore) -> None:
        self.repository = repository
        self.history = history

    async def list_sessions(self, request: ServiceRequest) -> list[dict[str, Any]]:
        status, limit, offset = _list_query(request.query)
        rows = await self.repository.list_sessions(status=status, limit=limit, offset=offset)
        return [session_view(row) for row in rows]

    async def get_session(self, request: ServiceRequest) -> dict[str, Any]:
        session_id = _session_id(request)
        session = await self.repository.get(session_id)
        if session is None:
            raise NotFoundError(f"Session with identifier '{session_id}' not found")
        messages = await self.repository.messages(session_id)
        return {**session_view(session), "messages": [message_view(row) for row in messages]}

    async def end_session(self, request: ServiceRequest) -> dict[str, Any]:
        session_id = _session_id(request)
        if await self.repository.get(session_id) is None:
            raise NotFoundError(f"Session with identifier '{session_id}' not found")
        was_active = await self.repository.end(session_id, utc_now())
        await self.history.delete(session_id)
        if was_active:
            CHAT_SESSIONS_ACTIVE.dec()
        log.info("chat session ended", session_id=session_id, request_id=request.request_id)
        return {"success": True}


def _session_id(request: ServiceRequest) -> str:
    session_id = request.params.get("id", "")
    if not SESSION_ID.match(session_id):
        raise ValidationFailedError(
            "Invalid session ID", fields={"id": ["Invalid session ID format"]}
        )
    return session_id


def _list_query(query: dict[str, str]) -> tuple[str | None, int, int]:
    fields: dict[str, list[str]] = {}
    status = query.get("status") or None
    if status is not None and status not in SESSION_STATUSES:
        fields["status"] = [
            f"Invalid enum value. Expected 'active' | 'ended' | 'expired', received '{status}'"
        ]
    limit = _integer(query, "limit", LIST_LIMIT_DEFAULT, 1, LIST_LIMIT_MAX, fields)
    offset = _integer(query, "offset", 0, 0, None, fields)
    if fields:
        raise ValidationFailedError("Invalid query parameters", fields=fields)
    return status, limit, offset


def _integer(
    query: dict[str, str],
    name: str,
    default: int,
    minimum: int,
    maximum: int | None,
    fields: dict[str, list[str]],
) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        number = float(raw)
    except ValueError:
        fields[name] = ["Expected number, received nan"]
        return default
    if not number.is_integer():
        fields[name] = ["Expected integer, received float"]
        return default
    if number < minimum:
        fields[name] = [f"Number must be greater than or equal to {minimum}"]
        return default
    highest = INTEGER_MAX if maximum is None else maximum
    if number > highest:
        fields[name] = [f"Number must be less than or equal to {highest}"]
        return default
    return int(number)
