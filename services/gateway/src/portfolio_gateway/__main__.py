"""``python -m portfolio_gateway``: serve the gateway with granian.

Settings are validated here first, so a wrong variable stops the process with
a message naming it before any worker starts. Granian then runs
``GATEWAY_WORKERS`` worker processes, each calling the ``create_app`` factory
(HTTP/1.1, ASGI with lifespan). On SIGTERM or SIGINT the workers report
not-ready and keep serving for ``SHUTDOWN_GRACE_S`` seconds. Then granian
stops accepting connections, lets in-flight requests finish, runs each
worker's lifespan shutdown (NATS drained, Redis closed) and exits 0
(see ``portfolio_gateway.serving``).
"""

from __future__ import annotations

from granian.constants import HTTPModes, Interfaces
from portfolio_shared.logging import configure_logging, get_logger
from portfolio_shared.settings import load_settings

from portfolio_gateway.serving import GatewayServer
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
    GatewayServer(
        "portfolio_gateway.app:create_app",
        factory=True,
        address=settings.gateway_host,
        port=settings.gateway_port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        workers=settings.gateway_workers,
        log_enabled=False,
        workers_kill_timeout=int(settings.shutdown_timeout_s) + 1,
        grace_s=settings.shutdown_grace_s,
    ).serve()


if __name__ == "__main__":
    main()
