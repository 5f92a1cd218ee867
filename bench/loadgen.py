"""The load generator: ``wrk`` driven with a generated Lua script that reports JSON.

Each run is bounded by ``duration_s`` (wrk's ``-d``) and by a process timeout
a little longer than that. Requests go to one loopback URL; the script can
rotate over several paths and send a JSON body. Any status other than 2xx or
3xx counts as an error in the result.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LoadResult", "LoadSpec", "ensure_wrk", "run_load", "wrk_version"]

RESULT_MARKER = "BENCH_JSON "
"""Prefix of the line the Lua ``done`` hook prints with the run's numbers."""

_DONE_HOOK = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
    .. '"max_us":%d,"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
    .. '"status_errors":%d,"timeouts":%d}\\n',
    "%MARKER%", summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout))
end
"""


@dataclass(frozen=True)
class LoadSpec:
    """Request description: a URL, and optionally more paths to rotate over, headers and a body."""

    url: str
    """Full loopback URL; its path is the only path unless ``paths`` is set."""

    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    """JSON text sent with every request (``Content-Type: application/json``)."""

    paths: tuple[str, ...] = ()
    """Paths (with query) used in turn, one per request, instead of the URL's path."""

    bodies: tuple[str, ...] = ()
    """JSON bodies used in turn, one per request, instead of ``body``."""

    def __post_init__(self) -> None:
        host = urlsplit(self.url).hostname
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"Invalid URL {self.url!r}. Load may only be sent to loopback.")


@dataclass(frozen=True)
class LoadResult:
    """Throughput and latency of one bounded wrk run."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    """Connect, read, write and timeout errors plus non-2xx/3xx responses."""

    connections: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_wrk() -> str:
    """Return the ``wrk`` binary, installing Debian's package when it is missing and we are root."""
    found = shutil.which("wrk")
    if found is not None:
        return found
    if shutil.which("apt-get") is not None and _is_root():
        subprocess.run(["apt-get", "update"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
        if found is not None:
            return found
    raise RuntimeError("wrk is not installed; install it with: apt-get install -y wrk")


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def wrk_version() -> str:
    result = subprocess.run([ensure_wrk(), "-v"], capture_output=True, text=True, check=False)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"


def _lua_string(value: str) -> str:
    return json.dumps(value)


def _script(spec: LoadSpec) -> str:
    lines = [f"wrk.method = {_lua_string(spec.method)}"]
    for name, value in spec.headers:
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    if spec.body is not None or spec.bodies:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    if spec.body is not None:
        lines.append(f"wrk.body = {_lua_string(spec.body)}")
    if spec.paths or spec.bodies:
        base_path = urlsplit(spec.url).path or "/"
        paths = spec.paths or (base_path,)
        bodies = spec.bodies or ((spec.body,) if spec.body is not None else ())
        lines.append("local paths = {" + ", ".join(_lua_string(p) for p in paths) + "}")
        lines.append("local bodies = {" + ", ".join(_lua_string(b) for b in bodies) + "}")
        lines.append("local turn = 0")
        lines.append(
            "request = function()\n"
            "  turn = turn + 1\n"
            "  local path = paths[(turn - 1) % #paths + 1]\n"
            "  local body = nil\n"
            "  if #bodies > 0 then body = bodies[(turn - 1) % #bodies + 1] end\n"
            "  return wrk.format(nil, path, nil, body)\n"
            "end"
        )
    lines.append(_DONE_HOOK.replace("%MARKER%", RESULT_MARKER))
    return "\n".join(lines)


def run_load(
    spec: LoadSpec, *, duration_s: float, connections: int, threads: int = 1, timeout_s: float = 2.0
) -> LoadResult:
    """Run wrk for ``duration_s`` against ``spec`` and return its numbers."""
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-", delete=False) as script:
        script.write(_script(spec))
        script_path = Path(script.name)
    argv = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration_s))}s",
        "--timeout",
        f"{max(1, round(timeout_s))}s",
        "-s",
        str(script_path),
        spec.url,
    ]
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
        )
    finally:
        script_path.unlink(missing_ok=True)
    numbers = _parse(completed.stdout)
    if numbers is None:
        raise RuntimeError(
            f"wrk printed no result (exit {completed.returncode}): {completed.stderr.strip()}"
        )
    duration = numbers["duration_us"] / 1e6
    errors = sum(
        numbers[key]
        for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        requests=numbers["requests"],
        duration_s=round(duration, 3),
        rps=round(numbers["requests"] / duration, 1) if duration > 0 else 0.0,
        p50_ms=numbers["p50_us"] / 1000,
        p90_ms=numbers["p90_us"] / 1000,
        p99_ms=numbers["p99_us"] / 1000,
        max_ms=numbers["max_us"] / 1000,
        mean_ms=round(numbers["mean_us"] / 1000, 3),
        errors=errors,
        connections=connections,
    )


def _parse(stdout: str) -> dict[str, Any] | None:
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            parsed: dict[str, Any] = json.loads(line.removeprefix(RESULT_MARKER))
            return parsed
    return None
