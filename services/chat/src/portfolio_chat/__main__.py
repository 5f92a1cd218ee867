"""``python -m portfolio_chat``: run one chat service instance until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio

from portfolio_shared.logging import configure_logging
from portfolio_shared.settings import load_settings
from portfolio_shared.tracing import configure_tracing

from portfolio_chat.service import ChatService
from portfolio_chat.settings import ChatSettings

__all__ = ["main"]


async def serve(settings: ChatSettings) -> None:
    async with ChatService(settings) as service:
        await service.run_until_stopped()


def main() -> None:
    settings = load_settings(ChatSettings)
    configure_logging("chat", level=settings.log_level, fmt=settings.log_format)
    configure_tracing("chat")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
