"""The rate_limit_remaining series stay bounded whatever the number of clients."""

from __future__ import annotations

import pytest
from portfolio_gateway.ratelimit.bucket import BucketPolicy
from portfolio_gateway.ratelimit.metrics import RemainingSeries
from prometheus_client import CollectorRegistry, Gauge

CHAT = BucketPolicy("chat", capacity=5, refill_rate=0.333)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge("rate_limit_remaining", "test", ["ip_hash", "policy"], registry=registry)


def exported(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["ip_hash"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
    }


def test_client_gets_its_remaining_tokens(gauge: Gauge, registry: CollectorRegistry) -> None:
    series = RemainingSeries(gauge=gauge, clock=Clock())
    series.record(CHAT, "aaaa", 3)
    assert exported(registry) == {"aaaa": 3}


def test_flood_of_clients_keeps_only_the_bound(gauge: Gauge, registry: CollectorRegistry) -> None:
    series = RemainingSeries(gauge=gauge, max_series=50, clock=Clock())
    for number in range(10_000):
        series.record(CHAT, f"{number:016x}", 4)
    assert len(exported(registry)) == 50


def test_most_recent_clients_are_kept(gauge: Gauge, registry: CollectorRegistry) -> None:
    series = RemainingSeries(gauge=gauge, max_series=2, clock=Clock())
    for client in ("first", "second", "third"):
        series.record(CHAT, client, 4)
    assert set(exported(registry)) == {"second", "third"}


def test_client_seen_again_moves_to_the_back(gauge: Gauge, registry: CollectorRegistry) -> None:
    series = RemainingSeries(gauge=gauge, max_series=2, clock=Clock())
    for client in ("first", "second", "first", "third"):
        series.record(CHAT, client, 4)
    assert set(exported(registry)) == {"first", "third"}


def test_idle_clients_are_dropped(gauge: Gauge, registry: CollectorRegistry) -> None:
    clock = Clock()
    series = RemainingSeries(gauge=gauge, clock=clock)
    series.record(CHAT, "idle", 0)
    clock.now += CHAT.idle_ttl_s
    series.record(CHAT, "active", 4)
    assert set(exported(registry)) == {"active"}


def test_clearing_drops_every_series(gauge: Gauge, registry: CollectorRegistry) -> None:
    series = RemainingSeries(gauge=gauge, clock=Clock())
    series.record(CHAT, "a", 1)
    series.record(CHAT, "b", 2)
    series.clear()
    assert exported(registry) == {}
