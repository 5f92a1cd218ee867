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
    async with service.runtime as runtime:
        runtime.install_signal_handlers()
        await runtime.wait_until_stopped()


def main() -> None:
    settings = load_settings(HealthSettings)
    configure_logging("health", level=settings.log_level, fmt=settings.log_format)
    configure_tracing("health")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
