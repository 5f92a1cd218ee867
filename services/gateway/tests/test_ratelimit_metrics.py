"""The rate_limit_remaining series: the last check's value at scrape time, bounded in number."""

from __future__ import annotations

import gc

import pytest
from portfolio_gateway.ratelimit.bucket import BucketPolicy
from portfolio_gateway.ratelimit.metrics import RemainingCollector, RemainingSeries
from prometheus_client import CollectorRegistry, generate_latest

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
def gauge(registry: CollectorRegistry) -> RemainingCollector:
    return RemainingCollector(registry)


def exported(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["ip_hash"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
    }


def test_client_gets_its_remaining_tokens(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, clock=Clock())
    series.record(CHAT, "aaaa", 3)
    assert exported(registry) == {"aaaa": 3}


def test_flood_of_clients_keeps_only_the_bound(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, max_series=50, clock=Clock())
    for number in range(10_000):
        series.record(CHAT, f"{number:016x}", 4)
    assert len(exported(registry)) == 50


def test_most_recent_clients_are_kept(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, max_series=2, clock=Clock())
    for client in ("first", "second", "third"):
        series.record(CHAT, client, 4)
    assert set(exported(registry)) == {"second", "third"}


def test_client_seen_again_moves_to_the_back(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, max_series=2, clock=Clock())
    for client in ("first", "second", "first", "third"):
        series.record(CHAT, client, 4)
    assert set(exported(registry)) == {"first", "third"}


def test_idle_clients_are_dropped(gauge: RemainingCollector, registry: CollectorRegistry) -> None:
    clock = Clock()
    series = RemainingSeries(collector=gauge, clock=clock)
    series.record(CHAT, "idle", 0)
    clock.now += CHAT.idle_ttl_s
    series.record(CHAT, "active", 4)
    assert set(exported(registry)) == {"active"}


def test_clearing_drops_every_series(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, clock=Clock())
    series.record(CHAT, "a", 1)
    series.record(CHAT, "b", 2)
    series.clear()
    assert exported(registry) == {}


def test_scrape_reports_the_last_check(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, clock=Clock())
    series.record(CHAT, "aaaa", 4)
    series.record(CHAT, "aaaa", 2)
    assert exported(registry) == {"aaaa": 2}


def test_exposition_names_the_labels(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, clock=Clock())
    series.record(CHAT, "aaaa", 0)
    text = generate_latest(registry).decode()
    assert "# TYPE rate_limit_remaining gauge" in text
    assert 'rate_limit_remaining{ip_hash="aaaa",policy="chat"} 0.0' in text


def test_latest_check_wins_across_series(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    first = RemainingSeries(collector=gauge, clock=Clock())
    second = RemainingSeries(collector=gauge, clock=Clock())
    second.record(CHAT, "aaaa", 1)
    first.record(CHAT, "aaaa", 3)
    assert exported(registry) == {"aaaa": 3}


def test_series_of_a_discarded_limiter_are_dropped(
    gauge: RemainingCollector, registry: CollectorRegistry
) -> None:
    series = RemainingSeries(collector=gauge, clock=Clock())
    series.record(CHAT, "aaaa", 3)
    del series
    gc.collect()
    assert exported(registry) == {}
