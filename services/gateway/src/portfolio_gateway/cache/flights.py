"""Concurrent cache misses of one key share one request to the content service.

When a popular entry is invalidated (the bundle after any write, say), every
request that arrives before the refill would otherwise send its own request
to the content service. ``FillFlights`` lets the first miss start the fill
and the misses that follow, in the same worker, wait for its result.

A flight is keyed by the cache key and the cache generation that the fill read
before it started. A request that reads a newer generation (because an
invalidation happened in between) starts a fill of its own, so it never
receives content older than a change it may already have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable

__all__ = ["FillFlights"]

T = TypeVar("T")


class FillFlights(Generic[T]):
    """Fills in progress in one worker, keyed by cache key and generation."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Task[T]] = {}
        self._waiting = 0

    def __len__(self) -> int:
        return len(self._flights)

    @property
    def waiting(self) -> int:
        """Callers waiting for a fill right now, the one that started it included."""
        return self._waiting

    async def join(self, key: Hashable, fill: Callable[[], Awaitable[T]]) -> T:
        """Return the result of the fill in flight under ``key``, starting ``fill`` if none is.

        Every caller gets the same result or the same exception. The fill runs as
        its own task, so a caller that is cancelled (its client went away) does not
        cancel it for the others.
        """
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(fill())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._land(key, done))
        self._waiting += 1
        try:
            return await asyncio.shield(task)
        finally:
            self._waiting -= 1

    def _land(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        # Reading the exception here keeps asyncio from reporting "exception was never
        # retrieved" when every caller went away. Each remaining caller still raises it.
        with contextlib.suppress(asyncio.CancelledError):
            task.exception()
