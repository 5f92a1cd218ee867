"""The Prometheus configuration and alert rules: valid for promtool, their unit tests pass,
and every runbook link in an annotation leads to a heading of ``docs/RUNBOOK.md``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPOSITORY / "deploy" / "prometheus"
RUNBOOK = REPOSITORY / "docs" / "RUNBOOK.md"

_FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6} (?P<title>.+?)\s*#*$", re.MULTILINE)
_RUNBOOK_LINK = re.compile(r"docs/RUNBOOK\.md#(?P<anchor>[^\s\"')]+)")

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


def unit_tested_alerts() -> set[str]:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    return {
        case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
    }


def test_every_runbook_alert_is_defined() -> None:
    assert defined_alerts() == RUNBOOK_ALERTS


def test_every_alert_has_a_unit_test() -> None:
    assert unit_tested_alerts() == RUNBOOK_ALERTS


def heading_anchor(title: str) -> str:
    """Return the anchor GitHub gives a Markdown heading (before any duplicate suffix)."""
    text = title.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    """Return the anchors of every heading of the runbook, with ``-1``, ``-2`` on repeats."""
    text = _FENCED_BLOCK.sub("", RUNBOOK.read_text(encoding="utf-8"))
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for match in _HEADING.finditer(text):
        anchor = heading_anchor(match.group("title"))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def linked_anchors(file_name: str) -> set[str]:
    """Return the runbook anchors a file under ``deploy/prometheus`` links to."""
    text = (PROMETHEUS_DIR / file_name).read_text(encoding="utf-8")
    return {match.group("anchor") for match in _RUNBOOK_LINK.finditer(text)}


def test_heading_anchor_follows_github() -> None:
    assert heading_anchor("Admin key compromise: rotation without downtime") == (
        "admin-key-compromise-rotation-without-downtime"
    )


def test_heading_anchor_drops_parentheses() -> None:
    assert heading_anchor("Memory cache (Redis unavailable)") == "memory-cache-redis-unavailable"


def test_every_alert_links_the_runbook() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())

    unlinked = {
        rule["alert"]
        for group in rules["groups"]
        for rule in group["rules"]
        if not str(rule.get("annotations", {}).get("runbook", "")).startswith("docs/RUNBOOK.md#")
    }

    assert unlinked == set()


@pytest.mark.parametrize("file_name", ["alerts.yml", "alerts_test.yml"])
def test_alert_runbook_links_resolve(file_name: str) -> None:
    broken = linked_anchors(file_name) - runbook_anchors()

    assert broken == set()


def test_runbook_internal_links_resolve() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(#([^)]+)\)", text))

    broken = linked - runbook_anchors()

    assert broken == set()
