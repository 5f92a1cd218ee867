"""``python -m portfolio_gateway``: serve the gateway with granian.

Settings are validated here first, so a wrong variable stops the process with
a message naming it before any worker starts. Granian then serves the
``create_app`` factory (HTTP/1.1, ASGI with lifespan): in this process when
``GATEWAY_WORKERS`` is 1, otherwise in that many worker processes. On SIGTERM or SIGINT the workers report
not-ready and keep serving for ``SHUTDOWN_GRACE_S`` seconds. Then granian
stops accepting connections, lets in-flight requests finish, runs each
worker's lifespan shutdown (NATS drained, Redis closed) and exits 0
(see ``portfolio_gateway.serving``).
"""

from __future__ import annotations

import sys

from granian.constants import HTTPModes, Interfaces
from portfolio_shared.logging import configure_logging, get_logger
from portfolio_shared.settings import load_settings

from portfolio_gateway.serving import GatewayServer, InProcessGateway
from portfolio_gateway.settings import GatewaySettings

__all__ = ["main"]


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", level=settings.log_level, fmt=settings.log_format)
    get_logger("gateway").info(
        "gateway listening",
        url=f"http://{settings.gateway_host}:{settings.gateway_port}",
        workers=settings.gateway_workers,
        shutdown_grace_s=settings.shutdown_grace_s,
    )
    kill_timeout_s = int(settings.shutdown_timeout_s) + 1
    if settings.gateway_workers == 1:
        from portfolio_gateway.app import create_app

        server = InProcessGateway(
            create_app,
            address=settings.gateway_host,
            port=settings.gateway_port,
            interface=Interfaces.ASGI,
            http=HTTPModes.http1,
            log_enabled=False,
            grace_s=settings.shutdown_grace_s,
            kill_timeout_s=kill_timeout_s,
        )
        sys.exit(server.serve())
    GatewayServer(
        "portfolio_gateway.app:create_app",
        factory=True,
        address=settings.gateway_host,
        port=settings.gateway_port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        workers=settings.gateway_workers,
        log_enabled=False,
        workers_kill_timeout=kill_timeout_s,
        grace_s=settings.shutdown_grace_s,
    ).serve()


if __name__ == "__main__":
    main()
