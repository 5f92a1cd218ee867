"""Recent conversation history per session, kept close for building provider prompts.

History lives in Redis under ``<REDIS_KEY_PREFIX>session:<id>`` as a list of
JSON messages (``{"role", "content"}``), trimmed to the turn cap and expiring
after ``idle_ttl_s`` without activity. When Redis is absent or failing, an
in-process memory map with the same cap and idle expiry takes over (through
``RedisLink``). A miss (expired, another replica's memory) is not an error: the
caller rebuilds the history from the database.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from portfolio_shared.redis_link import RedisLink

__all__ = ["HistoryStore"]

MEMORY_SESSIONS_MAX = 10_000
"""Sessions kept in the memory fallback; the least recently used leave first."""


class HistoryStore:
    """Capped, idle-expiring message lists per session, in Redis or memory."""

    def __init__(self, link: RedisLink, *, max_messages: int, idle_ttl_s: int) -> None:
        self.link = link
        self.max_messages = max_messages
        self.idle_ttl_s = idle_ttl_s
        self._memory: OrderedDict[str, tuple[float, list[dict[str, Any]]]] = OrderedDict()

    def key(self, session_id: str) -> str:
        return self.link.key("session", session_id)

    async def load(self, session_id: str) -> list[dict[str, Any]] | None:
        """Return the cached messages oldest first, or None on a miss."""
        client = self.link.client
        if client is not None:
            try:
                raw = await client.lrange(self.key(session_id), 0, -1)
            except (RedisError, OSError) as error:
                self.link.report_failure(error)
            else:
                if not raw:
                    return None
                await self._touch(session_id)
                return [json.loads(item) for item in raw]
        return self._memory_load(session_id)

    async def replace(self, session_id: str, messages: list[dict[str, Any]]) -> None:
        """Store ``messages`` as the whole history (after a rebuild from the database)."""
        await self._write(session_id, messages, replace=True)

    async def append(self, session_id: str, messages: list[dict[str, Any]]) -> None:
        await self._write(session_id, messages, replace=False)

    async def delete(self, session_id: str) -> None:
        self._memory.pop(session_id, None)
        client = self.link.client
        if client is not None:
            try:
                await client.delete(self.key(session_id))
            except (RedisError, OSError) as error:
                self.link.report_failure(error)

    async def _write(
        self, session_id: str, messages: list[dict[str, Any]], *, replace: bool
    ) -> None:
        client = self.link.client
        if client is not None:
            key = self.key(session_id)
            try:
                async with client.pipeline(transaction=True) as pipe:
                    if replace:
                        pipe.delete(key)
                    if messages:
                        pipe.rpush(key, *(json.dumps(message) for message in messages))
                    pipe.ltrim(key, -self.max_messages, -1)
                    pipe.expire(key, self.idle_ttl_s)
                    await pipe.execute()
                return
            except (RedisError, OSError) as error:
                self.link.report_failure(error)
        self._memory_write(session_id, messages, replace=replace)

    async def _touch(self, session_id: str) -> None:
        client = self.link.client
        if client is None:
            return
        try:
            await client.expire(self.key(session_id), self.idle_ttl_s)
        except (RedisError, OSError) as error:
            self.link.report_failure(error)

    def _memory_load(self, session_id: str) -> list[dict[str, Any]] | None:
        entry = self._memory.get(session_id)
        if entry is None:
            return None
        touched_at, messages = entry
        if time.monotonic() - touched_at > self.idle_ttl_s:
            del self._memory[session_id]
            return None
        self._memory[session_id] = (time.monotonic(), messages)
        self._memory.move_to_end(session_id)
        return list(messages)

    def _memory_write(
        self, session_id: str, messages: list[dict[str, Any]], *, replace: bool
    ) -> None:
        current = [] if replace else (self._memory_load(session_id) or [])
        combined = (current + messages)[-self.max_messages :]
        self._memory[session_id] = (time.monotonic(), combined)
        self._memory.move_to_end(session_id)
        while len(self._memory) > MEMORY_SESSIONS_MAX:
            self._memory.popitem(last=False)
