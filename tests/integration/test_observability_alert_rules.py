"""The Prometheus configuration and alert rules: valid for promtool, and their unit tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"

RUNBOOK_ALERTS = {
    "http_errors_5xx_rate",
    "health_check_failed",
    "circuit_breaker_state",
    "database_connection_errors",
    "rate_limit_hits",
    "http_latency_p99",
    "cache_miss_ratio",
    "llm_latency_p95",
}
"""The runbook's critical and warning alerts, by name."""


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found is not None, "promtool is missing: run `make test`, which installs it"
    return found


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, check=False
    )


def test_alert_rules_pass_promtool_check(promtool: str) -> None:
    checked = run_promtool(promtool, "check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_config_passes_promtool_check(promtool: str) -> None:
    checked = run_promtool(promtool, "check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    tested = run_promtool(promtool, "test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def defined_alerts() -> set[str]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def tested_alerts() -> set[str]:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    return {
        case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
    }


def test_every_runbook_alert_is_defined() -> None:
    assert defined_alerts() == RUNBOOK_ALERTS


def test_every_alert_has_a_unit_test() -> None:
    assert tested_alerts() == RUNBOOK_ALERTS
