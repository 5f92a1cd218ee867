"""The aggregation rules of readiness: which failures make the system degraded or unhealthy."""

from __future__ import annotations

import pytest
from portfolio_health.discovery import Instance
from portfolio_health.readiness import aggregate
from portfolio_shared.contract.messages import CheckReport, CheckResult

OK = CheckResult(status="ok", critical=False)


def instance(kind: str, name: str = "") -> Instance:
    return Instance(kind=kind, micro_id=f"{kind}-{name or 'a'}-id", name=name or f"{kind}-a")


def report(kind: str, name: str = "", **checks: CheckResult) -> tuple[Instance, CheckReport]:
    found = instance(kind, name)
    return found, CheckReport(service=kind, instance=found.name, checks=dict(checks))


def healthy_system() -> list[tuple[Instance, CheckReport | None]]:
    return [
        report("content", database=CheckResult(status="ok", critical=True)),
        report("chat", llm=OK, session_store=OK),
        report("gateway", cache=OK, ratelimit=OK),
        report("health"),
    ]


def test_every_part_ok_is_ready() -> None:
    assert aggregate(healthy_system()).status == "ready"


def test_database_passing_reads_ok() -> None:
    assert aggregate(healthy_system()).checks["database"] == "ok"


def test_each_part_is_named_in_checks() -> None:
    checks = aggregate(healthy_system()).checks
    assert set(checks) == {
        "nats",
        "content",
        "chat",
        "database",
        "llm",
        "session_store",
        "cache",
        "ratelimit",
    }


@pytest.mark.parametrize(
    ("results", "failing_part"),
    [
        pytest.param(
            [report("chat", llm=OK), report("health")], "content", id="no content instance"
        ),
        pytest.param(
            [report("content", database=CheckResult(status="error", critical=True))],
            "database",
            id="database down",
        ),
    ],
)
def test_critical_part_down_is_unhealthy(
    results: list[tuple[Instance, CheckReport | None]], failing_part: str
) -> None:
    answer = aggregate(results)
    assert (answer.status, answer.checks[failing_part]) == ("unhealthy", "error")


def test_database_unreported_reads_error() -> None:
    answer = aggregate([report("chat", llm=OK)])
    assert answer.checks["database"] == "error"


def test_unreachable_content_not_running() -> None:
    answer = aggregate([(instance("content"), None), report("chat", llm=OK)])
    assert answer.checks["content"] == "error"


def test_unreachable_instance_is_listed_as_such() -> None:
    answer = aggregate([*healthy_system(), (instance("content", "frozen"), None)])
    listed = {(item.instance, item.status) for item in answer.instances}
    assert ("frozen", "unreachable") in listed


def test_second_content_replica_keeps_ready() -> None:
    answer = aggregate([*healthy_system(), (instance("content", "frozen"), None)])
    assert answer.status == "ready"


@pytest.mark.parametrize(
    "results",
    [
        pytest.param(
            [report("content", database=CheckResult(status="ok", critical=True))],
            id="no chat instance",
        ),
        pytest.param(
            [
                report("content", database=CheckResult(status="ok", critical=True)),
                report("chat", llm=CheckResult(status="error", critical=False)),
            ],
            id="llm circuit open",
        ),
        pytest.param(
            [
                report("content", database=CheckResult(status="ok", critical=True)),
                report(
                    "gateway",
                    cache=CheckResult(status="error", critical=False, fallback="memory"),
                ),
            ],
            id="redis down under the cache",
        ),
    ],
)
def test_non_critical_part_down_is_degraded(
    results: list[tuple[Instance, CheckReport | None]],
) -> None:
    assert aggregate(results).status == "degraded"


def test_fallback_named_in_part() -> None:
    results = [
        *healthy_system(),
        report(
            "gateway", "b", cache=CheckResult(status="error", critical=False, fallback="memory")
        ),
    ]
    assert aggregate(results).checks["cache"] == "error (fallback: memory)"


def test_any_failing_instance_fails_part() -> None:
    results = [
        *healthy_system(),
        report("chat", "b", llm=CheckResult(status="error", critical=False)),
    ]
    assert aggregate(results).checks["llm"] == "error"


def test_service_marks_check_critical() -> None:
    results = [*healthy_system(), report("chat", "b", llm=CheckResult(status="ok", critical=True))]
    assert "llm" in aggregate(results).critical


def test_critical_list_names_nats_content_and_database() -> None:
    assert {"nats", "content", "database"} <= set(aggregate(healthy_system()).critical)


def test_added_critical_error_is_unhealthy() -> None:
    answer = aggregate(healthy_system()).with_part("health", "error", critical=True)
    assert answer.status == "unhealthy"


def test_added_ok_keeps_existing_error() -> None:
    degraded = aggregate(
        [
            *healthy_system(),
            report("gateway", "b", cache=CheckResult(status="error", critical=False)),
        ]
    )
    assert degraded.with_part("cache", "ok", critical=False).checks["cache"] == "error"
