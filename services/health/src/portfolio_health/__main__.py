"""``python -m portfolio_health``: run one health service instance until SIGTERM."""

from __future__ import annotations

import asyncio

from portfolio_shared.logging import configure_logging
from portfolio_shared.settings import load_settings
from portfolio_shared.tracing import configure_tracing

from portfolio_health.service import HealthService
from portfolio_health.settings import HealthSettings

__all__ = ["main"]


async def serve(settings: HealthSettings) -> None:
    service = HealthService(settings)
    # Installed before connecting, so a SIGTERM during startup still ends in a clean stop.
    service.runtime.install_signal_handlers()
    async with service.runtime as runtime:
        await runtime.wait_until_stopped()


def main() -> None:
    settings = load_settings(HealthSettings)
    configure_logging("health", level=settings.log_level, fmt=settings.log_format)
    configure_tracing("health")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
