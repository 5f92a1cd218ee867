"""Container health probe: ``python -m portfolio_shared.devstack.probe [kind]``.

Exits 0 when the service is healthy, 1 otherwise, printing one line either way,
as Docker's ``HEALTHCHECK`` and compose's ``healthcheck`` expect. The gateway is
probed over HTTP (``/api/health/live`` on ``GATEWAY_PORT``). The other services
are probed through NATS micro discovery: ``$SRV.PING`` to ``<NATS_NAMESPACE>-<kind>``
at ``NATS_URL`` must get a reply. Without ``kind`` the probe reads it from the
container's main command (``python -m portfolio_<kind>`` as PID 1).

NOTE: micro discovery replies come from any replica of a kind, so for content
and chat the probe shows that the kind is reachable, not that this replica is.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import nats
import nats.errors

from portfolio_shared.contract import Subjects
from portfolio_shared.contract.subjects import SERVICE_KINDS

__all__ = ["kind_of_main_process", "main", "probe"]

PROBE_TIMEOUT_S = 2.0
"""Maximum time one probe waits for a reply."""


def kind_of_main_process(cmdline_path: Path = Path("/proc/1/cmdline")) -> str | None:
    """Return the service kind PID 1 runs (``portfolio_<kind>`` in its command), if any."""
    try:
        arguments = cmdline_path.read_bytes().split(b"\0")
    except OSError:
        return None
    for argument in arguments:
        match = re.fullmatch(rb"portfolio_(\w+)", argument)
        if match is not None and match.group(1).decode() in SERVICE_KINDS:
            return match.group(1).decode()
    return None


def _probe_gateway(environ: dict[str, str]) -> tuple[bool, str]:
    port = environ.get("GATEWAY_PORT", "8000")
    url = f"http://127.0.0.1:{port}/api/health/live"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        return False, f"gateway liveness request failed: {error}"
    return status == 200, f"gateway liveness returned {status}"


async def _probe_micro(environ: dict[str, str], kind: str) -> tuple[bool, str]:
    servers = [url.strip() for url in environ.get("NATS_URL", "nats://127.0.0.1:4222").split(",")]
    name = Subjects(environ.get("NATS_NAMESPACE", "portfolio")).service_name(kind)
    try:
        client = await nats.connect(
            servers=servers, connect_timeout=PROBE_TIMEOUT_S, max_reconnect_attempts=0
        )
    except (OSError, nats.errors.Error) as error:
        return False, f"NATS connection failed: {error or type(error).__name__}"
    try:
        await client.request(f"$SRV.PING.{name}", b"", timeout=PROBE_TIMEOUT_S)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        return False, f"no instance of {name} replied to $SRV.PING"
    finally:
        await client.close()
    return True, f"{name} replied to $SRV.PING"


def probe(kind: str, environ: dict[str, str] | None = None) -> tuple[bool, str]:
    """Probe one service kind; return whether it is healthy and a one-line reason."""
    environ = dict(os.environ) if environ is None else environ
    if kind == "gateway":
        return _probe_gateway(environ)
    return asyncio.run(_probe_micro(environ, kind))


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else kind_of_main_process()
    if kind not in SERVICE_KINDS:
        print(f"invalid service kind {kind!r}: expected one of {', '.join(SERVICE_KINDS)}")
        raise SystemExit(1)
    healthy, reason = probe(kind)
    print(reason)
    raise SystemExit(0 if healthy else 1)


if __name__ == "__main__":
    main()
