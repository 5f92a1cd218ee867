"""Merging the Prometheus text expositions of many instances into one.

Every instance replies on its metrics subject with its own exposition. Operators
scrape one endpoint, so the health service and the gateway combine them:
each sample gets ``service`` and ``instance`` labels, families of the same
name from different instances become one family (one ``HELP``/``TYPE`` block),
and ``instance_up`` marks which instances replied in time (1) and which did
not (0). The result is text format 0.0.4 that ``promtool check metrics``
accepts.

A label the instance already set under one of those names is kept as
``exported_service`` / ``exported_instance``, as Prometheus does on a scrape.
Families whose type disagrees with the first family of that name are dropped
(logged once per merge); duplicate series keep their first value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["CONTENT_TYPE", "INSTANCE_UP", "ExpositionMerger"]

log = get_logger("metrics.merge")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Media type of the Prometheus text format served by ``/api/metrics``."""

INSTANCE_UP = "instance_up"
"""Gauge naming each instance: 1 when its metrics arrived in time, 0 when they did not."""


class ExpositionMerger:
    """Collects expositions with their labels, then renders one exposition."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}
        self._seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        self._conflicts: set[str] = set()

    def add_text(self, text: str, labels: Mapping[str, str]) -> None:
        """Parse one exposition and add its samples with ``labels`` added to each.

        Raises ``ValueError`` when the text is not a valid exposition; nothing of
        it is added then. A local registry goes through its text form too
        (``generate_latest``), so that counters' ``_created`` series come out
        as the same separate families whatever the source.
        """
        families = list(text_string_to_metric_families(text))
        for family in families:
            self._add_family(family, labels)

    def add_up(self, service: str, instance: str, *, up: bool) -> None:
        """Record whether one instance replied to its metrics request in time."""
        family = Metric(
            INSTANCE_UP,
            "1 when the instance answered the metrics collection in time, 0 when it did not.",
            "gauge",
        )
        family.add_sample(
            INSTANCE_UP, {"service": service, "instance": instance}, 1.0 if up else 0.0
        )
        self._add_family(family, {})

    def render(self) -> bytes:
        """Render the merged exposition in text format 0.0.4."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_FixedCollector(list(self._families.values())))
        return generate_latest(registry)

    def _add_family(self, family: Metric, labels: Mapping[str, str]) -> None:
        merged = self._families.get(family.name)
        if merged is None:
            merged = Metric(family.name, family.documentation, family.type, family.unit)
            self._families[family.name] = merged
        elif merged.type != family.type:
            if family.name not in self._conflicts:
                self._conflicts.add(family.name)
                log.warning(
                    "metric family dropped: type differs between instances",
                    metric=family.name,
                    kept=merged.type,
                    dropped=family.type,
                    **labels,
                )
            return
        for sample in family.samples:
            sample_labels = _relabel(sample.labels, labels)
            key = (sample.name, tuple(sorted(sample_labels.items())))
            if key in self._seen:
                continue
            self._seen.add(key)
            merged.samples.append(sample._replace(labels=sample_labels))


def _relabel(own: Mapping[str, str], added: Mapping[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in own.items():
        result[f"exported_{name}" if name in added else name] = value
    result.update(added)
    return result


class _FixedCollector:
    """A collector that returns the families it was built with."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families
