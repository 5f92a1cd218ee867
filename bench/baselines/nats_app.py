"""Baseline 2: the bare app doing one NATS request/reply per HTTP request.

The NATS connection is opened in the lifespan, like the gateway's, and each
request waits for the trivial responder's reply and returns its bytes.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import nats
from litestar import Litestar, Response, get

from bench.baselines import BASELINE_PATH, responder_subject

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client

__all__ = ["create_app"]

REQUEST_TIMEOUT_S = 1.0
"""Deadline of one request to the responder, the gateway's default NATS deadline."""


def create_app() -> Litestar:
    """Build the app; ``NATS_URL`` and ``NATS_NAMESPACE`` name the server and the responder."""
    subject = responder_subject(os.environ["NATS_NAMESPACE"])
    connection: dict[str, Client] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        connection["nats"] = await nats.connect(os.environ["NATS_URL"], name="bench-baseline")
        try:
            yield
        finally:
            await connection["nats"].drain()

    @get(BASELINE_PATH)
    async def baseline() -> Response[bytes]:
        reply = await connection["nats"].request(subject, b"", timeout=REQUEST_TIMEOUT_S)
        return Response(reply.data, media_type="application/json")

    return Litestar(
        route_handlers=[baseline], lifespan=[lifespan], openapi_config=None, logging_config=None
    )
