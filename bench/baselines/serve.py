"""``python -m bench.baselines.serve``: serve a baseline app the way the gateway is served.

With one worker the gateway runs granian's embedded server in its own process
(``portfolio_gateway.serving.InProcessGateway``), and so does a baseline here.
With more workers both run granian's supervisor and worker processes. The
options are the gateway's: ASGI with lifespan, HTTP/1.1, no access log.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.server.mp import MPServer
from portfolio_gateway.serving import InProcessGateway

__all__ = ["main"]

KILL_TIMEOUT_S = 5
"""Maximum wait for in-flight requests when a baseline stops, in seconds."""


def _load_factory(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines.serve")
    parser.add_argument("target", help="the app factory, as module:function")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    arguments = parser.parse_args(argv)
    options: dict[str, Any] = {
        "address": "127.0.0.1",
        "port": arguments.port,
        "interface": Interfaces.ASGI,
        "http": HTTPModes.http1,
        "log_enabled": False,
    }
    if arguments.workers == 1:
        server = InProcessGateway(
            _load_factory(arguments.target), grace_s=0, kill_timeout_s=KILL_TIMEOUT_S, **options
        )
        return server.serve()
    MPServer(
        arguments.target,
        factory=True,
        workers=arguments.workers,
        workers_kill_timeout=KILL_TIMEOUT_S,
        **options,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
