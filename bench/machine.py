"""Facts about the machine and the software a run measured, for the report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from portfolio_shared.testing.servers import bundled_nats_server_path

from bench.loadgen import wrk_version

__all__ = ["machine_facts", "software_versions"]

PACKAGES = ("litestar", "granian", "nats-py", "msgspec", "redis", "structlog", "httpx")
"""Python packages whose versions the report lists."""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def machine_facts() -> dict[str, Any]:
    """Cores, memory, CPU model, kernel and OS of this machine."""
    return {
        "cores": os.cpu_count() or 0,
        "memory_gib": _memory_gib(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
    }


def _binary_version(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def software_versions() -> dict[str, str]:
    """Versions of Python, the key packages, nats-server, valkey and wrk."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["nats-server"] = _binary_version([bundled_nats_server_path(), "--version"])
    try:
        from portfolio_shared.testing.servers import bundled_redis_server_path

        versions["valkey-server"] = _binary_version([bundled_redis_server_path(), "--version"])
    except (ImportError, FileNotFoundError):
        versions["valkey-server"] = "not installed"
    versions["wrk"] = wrk_version()
    return versions
