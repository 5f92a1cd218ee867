"""Invalidation latency: from an admin write's 2xx on one replica to the other replica serving it.

Before each write the item is read through the other replica, so its copy is
cached there. The write goes through the first replica. Then the other
replica is polled back to back until its public response carries the new
version. The time from the write's 2xx to that answer is one sample. A write
not visible within the deadline is a miss, reported beside the percentiles.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec
import nats
from portfolio_shared.contract import ContentChanged, Subjects, decode_event

from bench.results import LatencySummary

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from bench.admin import GatewayClient

__all__ = ["EventTap", "measure_invalidation"]


class EventTap:
    """A NATS subscriber on the content-changed subject, noting when each event arrives.

    Arrival times are ``time.perf_counter()`` readings keyed by (content id,
    version), so they compare with the write's 2xx time taken in this process.
    It runs its own event loop in a thread; use it as a context manager.
    """

    def __init__(self, nats_url: str, namespace: str) -> None:
        self._url = nats_url
        self._subject = Subjects(namespace).content_changed
        self._arrivals: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="event-tap", daemon=True)

    def __enter__(self) -> EventTap:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the event tap did not subscribe within 10 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def arrival(self, content_id: str, version: int) -> float | None:
        with self._lock:
            return self._arrivals.get((content_id, version))

    def _run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = await nats.connect(self._url, name="bench-event-tap")

        async def note(message: Msg) -> None:
            arrived = time.perf_counter()
            try:
                event = decode_event(message.data)
            except msgspec.DecodeError:
                return
            if isinstance(event, ContentChanged):
                with self._lock:
                    self._arrivals[(event.content_id, event.version)] = arrived

        await client.subscribe(self._subject, cb=note)
        await client.flush()
        self._ready.set()
        await self._stop.wait()
        await client.drain()


def _version_of(client: GatewayClient, path: str) -> int | None:
    response = client.get(path)
    if response.status_code != 200:
        return None
    data: dict[str, Any] = response.json()["data"]
    version = data.get("version")
    return int(version) if isinstance(version, int) else None


def measure_invalidation(
    writer: GatewayClient,
    reader: GatewayClient,
    item: dict[str, Any],
    *,
    writes: int,
    deadline_s: float,
    tap: EventTap | None = None,
    key: str = "invalidation",
    title: str = "Write on replica 0 → served by replica 1",
) -> list[LatencySummary]:
    """Time ``writes`` updates of ``item`` from ``writer``'s 2xx to ``reader`` showing them.

    With a ``tap``, also time each write's 2xx to its event reaching NATS
    subscribers (negative when the event arrived before the HTTP response).
    """
    path = f"/api/v1/content/{item['type']}/{item['slug']}"
    samples_ms: list[float] = []
    event_ms: list[float] = []
    misses = 0
    cached_before = 0
    data = dict(item["data"])
    for write in range(writes):
        reader.get(path)
        response = reader.get(path)
        if response.headers.get("x-cache", "").upper().startswith("HIT"):
            cached_before += 1

        data["benchWrite"] = write
        updated = writer.update(item["id"], {"data": data})
        written_at = time.perf_counter()
        new_version = int(updated["version"])

        deadline = written_at + deadline_s
        while True:
            version = _version_of(reader, path)
            now = time.perf_counter()
            if version is not None and version >= new_version:
                samples_ms.append((now - written_at) * 1000)
                break
            if now > deadline:
                misses += 1
                break
        arrived = tap.arrival(item["id"], new_version) if tap is not None else None
        if arrived is not None:
            event_ms.append((arrived - written_at) * 1000)
    note = (
        f"the item was a cache hit on the reading replica before {cached_before} of {writes} "
        "writes (by its `X-Cache` header)"
    )
    summaries = [LatencySummary.of(key, title, samples_ms, misses=misses, note=note)]
    if tap is not None:
        summaries.append(
            LatencySummary.of(
                f"{key}_event",
                "of which: write's 2xx → its event on NATS",
                event_ms,
                misses=writes - len(event_ms),
            )
        )
    return summaries
