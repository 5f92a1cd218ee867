"""A wrong variable stops a service at startup with a line naming it and the expected form.

Each case starts the real service process (``python -m portfolio_<kind>``)
with one invalid value and checks that it exits non-zero before doing any work,
printing ``invalid configuration: <VARIABLE>: ...``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

STARTUP_TIMEOUT_S = 60.0
"""Maximum wait for a process to exit on invalid configuration."""

CASES = [
    ("gateway", "RATE_LIMIT_REFILL_RATE", "-1"),
    ("gateway", "ADMIN_API_KEY", "too-short"),
    ("gateway", "ADMIN_API_KEYS", "k" * 40 + ",short"),
    ("gateway", "GATEWAY_PORT", "eighty"),
    ("gateway", "NATS_URL", "http://127.0.0.1:4222"),
    ("content", "TURSO_DATABASE_URL", "postgres://127.0.0.1/portfolio"),
    ("content", "REDIS_URL", "127.0.0.1:6379"),
    ("chat", "LLM_BASE_URL", "api.example.invalid/v1"),
    ("chat", "CIRCUIT_BREAKER_FAILURE_THRESHOLD", "0"),
    ("health", "SHUTDOWN_TIMEOUT_S", "-5"),
]


@pytest.mark.parametrize(
    ("kind", "variable", "value"), CASES, ids=[f"{kind}-{variable}" for kind, variable, _ in CASES]
)
def test_invalid_variable_stops_the_service(
    kind: str, variable: str, value: str, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DATA_DIR": str(tmp_path),
        # Unreachable on purpose: a process that got past validation would hang here.
        "NATS_URL": "nats://127.0.0.1:9",
        "NATS_NAMESPACE": "invalid-config",
        variable: value,
    }

    result = subprocess.run(
        [sys.executable, "-m", f"portfolio_{kind}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_S,
        check=False,
    )

    assert result.returncode != 0
    assert f"invalid configuration: {variable}" in result.stderr + result.stdout
