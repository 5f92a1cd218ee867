"""``python -m portfolio_content``: run one content service instance."""

from __future__ import annotations

import asyncio

from portfolio_shared.logging import configure_logging, get_logger
from portfolio_shared.settings import load_settings
from portfolio_shared.tracing import configure_tracing

from portfolio_content.app import run
from portfolio_content.settings import ContentSettings

__all__ = ["main"]


def main() -> None:
    settings = load_settings(ContentSettings)
    configure_logging("content", level=settings.log_level, fmt=settings.log_format)
    configure_tracing("content")
    try:
        asyncio.run(run(settings))
    except Exception as error:
        # Startup failures (an unreachable database, NATS never answering) end here.
        get_logger("content.app").exception(
            "content service stopped on an error", error=str(error) or type(error).__name__
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
