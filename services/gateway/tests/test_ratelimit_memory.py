"""The in-process bucket store: per-client buckets, bounded size, idle eviction."""

from __future__ import annotations

from portfolio_gateway.ratelimit.bucket import BucketPolicy
from portfolio_gateway.ratelimit.memory_backend import MemoryBackend

CHAT = BucketPolicy("chat", capacity=2, refill_rate=0.5)
CONTENT = BucketPolicy("content", capacity=2, refill_rate=0.5)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def exhaust(memory: MemoryBackend, policy: BucketPolicy, client: str) -> None:
    for _ in range(policy.capacity):
        memory.take(policy, client)


def test_clients_have_separate_buckets() -> None:
    memory = MemoryBackend(clock=Clock())
    exhaust(memory, CHAT, "a")
    allowed, _ = memory.take(CHAT, "b")
    assert allowed


def test_policies_have_separate_buckets() -> None:
    memory = MemoryBackend(clock=Clock())
    exhaust(memory, CHAT, "a")
    allowed, _ = memory.take(CONTENT, "a")
    assert allowed


def test_exhausted_bucket_rejects() -> None:
    memory = MemoryBackend(clock=Clock())
    exhaust(memory, CHAT, "a")
    allowed, _ = memory.take(CHAT, "a")
    assert not allowed


def test_looking_without_consuming_keeps_the_token() -> None:
    memory = MemoryBackend(clock=Clock())
    memory.take(CHAT, "a", consume=False)
    _, tokens = memory.take(CHAT, "a")
    assert tokens == 1.0


def test_store_never_exceeds_its_bound() -> None:
    memory = MemoryBackend(clock=Clock(), max_buckets=100)
    for number in range(1000):
        memory.take(CHAT, f"client-{number}")
    assert len(memory) == 100


def test_least_recently_used_bucket_is_evicted_first() -> None:
    memory = MemoryBackend(clock=Clock(), max_buckets=2)
    exhaust(memory, CHAT, "old")
    exhaust(memory, CHAT, "recent")
    memory.take(CHAT, "old")  # used again: now the most recent
    memory.take(CHAT, "new")
    allowed, _ = memory.take(CHAT, "old")
    assert not allowed


def test_idle_buckets_are_dropped() -> None:
    clock = Clock()
    memory = MemoryBackend(clock=clock)
    for number in range(50):
        memory.take(CHAT, f"client-{number}")
    clock.now += CHAT.idle_ttl_s
    memory.take(CHAT, "late")
    assert len(memory) == 1


def test_dropped_idle_bucket_comes_back_full() -> None:
    clock = Clock()
    memory = MemoryBackend(clock=clock)
    exhaust(memory, CHAT, "a")
    clock.now += CHAT.idle_ttl_s
    memory.take(CHAT, "other")
    _, tokens = memory.take(CHAT, "a")
    assert tokens == CHAT.capacity - 1
