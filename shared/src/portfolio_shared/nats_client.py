"""Connecting to NATS and making request/reply calls with typed failures.

``connect_nats`` retries the first connection and keeps reconnecting forever
after that, logging each disconnect and reconnect once. ``request`` maps the
transport's failures to ``ServiceUnavailableError`` so callers handle one
exception type for "the other side is not there".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from portfolio_shared.contract.messages import ServiceRequest, decode_reply
from portfolio_shared.errors import ServiceUnavailableError
from portfolio_shared.logging import get_logger
from portfolio_shared.tracing import inject_headers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["NatsClient", "connect_nats", "request"]

log = get_logger("nats")

REQUEST_ID_HEADER = "Request-Id"
"""NATS header that carries the HTTP request id from the gateway to every service."""


async def connect_nats(
    url: str,
    *,
    name: str,
    first_connect_timeout_s: float = 30.0,
    on_reconnected: Callable[[], Awaitable[None]] | None = None,
    on_disconnected: Callable[[], Awaitable[None]] | None = None,
) -> NatsClient:
    """Connect, retrying for up to ``first_connect_timeout_s``, then reconnect forever."""

    async def error_cb(error: Exception) -> None:
        log.warning("nats connection error", error=str(error) or type(error).__name__)

    connected: list[NatsClient] = []

    async def disconnected_cb() -> None:
        log.warning("nats disconnected")
        if connected:
            _fail_pending_requests(connected[0])
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected_cb() -> None:
        log.info("nats reconnected")
        if on_reconnected is not None:
            await on_reconnected()

    servers = [server.strip() for server in url.split(",")]
    deadline = asyncio.get_running_loop().time() + first_connect_timeout_s
    attempt = 0
    while True:
        attempt += 1
        try:
            client = await nats.connect(
                servers=servers,
                name=name,
                connect_timeout=2,
                reconnect_time_wait=0.5,
                max_reconnect_attempts=-1,
                ping_interval=5,
                max_outstanding_pings=2,
                error_cb=error_cb,
                disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb,
            )
        except (OSError, nats.errors.Error) as error:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            log.warning("nats connect failed, retrying", attempt=attempt, error=str(error))
            await asyncio.sleep(min(0.2 * attempt, 2.0))
            continue
        log.info(
            "nats connected", server=client.connected_url.netloc if client.connected_url else None
        )
        connected.append(client)
        return client


def _fail_pending_requests(client: NatsClient) -> None:
    """Fail every request still waiting for a reply when the connection drops.

    A reply cannot arrive on a dropped connection, so without this each caller
    would wait out its whole timeout. nats-py 2.16 keeps the waiting futures in
    the private ``_resp_map``; each future removes itself from it when done.
    """
    pending = getattr(client, "_resp_map", None)
    if not pending:
        return
    for future in list(pending.values()):
        if not future.done():
            future.set_exception(nats.errors.ConnectionReconnectingError())


async def request(
    client: NatsClient,
    subject: str,
    message: ServiceRequest,
    *,
    timeout_s: float,
    service: str,
) -> Any:
    """Send ``message`` to ``subject`` and return the reply's ``data``.

    Raises the typed error a service replied with, or ``ServiceUnavailableError``
    when nobody listens, nobody answers within ``timeout_s`` or the connection
    is down. ``service`` names the callee in those messages.
    """
    if not client.is_connected:
        # While reconnecting, nats-py buffers the request and waits out the
        # whole timeout; a caller is better served by an immediate 503.
        raise ServiceUnavailableError(
            f"The {service} service is unreachable: the message bus is disconnected"
        )
    headers = inject_headers({})
    if message.request_id:
        headers[REQUEST_ID_HEADER] = message.request_id
    try:
        reply = await client.request(subject, message.encode(), timeout=timeout_s, headers=headers)
    except nats.errors.NoRespondersError:
        raise ServiceUnavailableError(
            f"The {service} service is unavailable: no instance is running"
        ) from None
    except nats.errors.TimeoutError:
        raise ServiceUnavailableError(
            f"The {service} service did not answer within {int(timeout_s * 1000)} ms"
        ) from None
    except (
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.OutboundBufferLimitError,
        nats.errors.StaleConnectionError,
    ):
        raise ServiceUnavailableError(
            f"The {service} service is unreachable: the message bus is disconnected"
        ) from None
    return decode_reply(reply.data)
