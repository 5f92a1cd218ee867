"""Invalidation latency: from an admin write's 2xx on one replica to the other replica serving it.

Before each write the item is read through the other replica, so its copy is
cached there; the write goes through the first replica; then the other
replica is polled back to back until its public response carries the new
version. The time from the write's 2xx to that answer is one sample. A write
not visible within the deadline is a miss, reported beside the percentiles.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench.results import LatencySummary

if TYPE_CHECKING:
    from bench.admin import GatewayClient

__all__ = ["measure_invalidation"]


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
    key: str = "invalidation",
    title: str = "Admin write on replica 0 → new version served by replica 1",
) -> LatencySummary:
    """Time ``writes`` updates of ``item`` from ``writer``'s 2xx to ``reader`` showing them."""
    path = f"/api/v1/content/{item['type']}/{item['slug']}"
    samples_ms: list[float] = []
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
    note = (
        f"the item was a cache hit on replica 1 before {cached_before} of {writes} writes "
        "(by its `X-Cache` header)"
    )
    return LatencySummary.of(key, title, samples_ms, misses=misses, note=note)
