"""Relaying a streamed chat turn from NATS to the client as Server-Sent Events.

``start_stream`` subscribes to a fresh inbox and requests a stream to it
from the chat service; the service's ack (or its error) comes back at once.
``relay_stream`` then yields one SSE event per stream message as soon as it
arrives: ``token`` (``{"text": ...}``), and finally ``done`` (the JSON reply)
or ``error`` (an error body with ``requestId``). Nothing is buffered or
compressed on the way.

The whole stream is bounded by ``CHAT_REQUEST_TIMEOUT_MS`` (an ``error`` event
with ``REQUEST_TIMEOUT`` when it runs out). When the stream ends before the
service's final message (the client went away, the deadline passed), a
``ChatStreamCancel`` tells the chat service to stop the turn and its provider
call.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
from portfolio_shared.contract.streaming import (
    ChatStreamCancel,
    ChatStreamDone,
    ChatToken,
    decode_stream_message,
)
from portfolio_shared.errors import GatewayTimeoutError, error_from_wire
from portfolio_shared.logging import get_logger

from portfolio_gateway.forwarding import call_service
from portfolio_gateway.http.errors import error_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Request
    from nats.aio.subscription import Subscription
    from portfolio_shared.contract import ServiceRequest

    from portfolio_gateway.state import GatewayState

__all__ = ["SSE_HEADERS", "StartedStream", "relay_stream", "start_stream"]

log = get_logger("gateway.chat.sse")

SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
"""Response headers of an event stream: no caching, and no buffering by a proxy in front."""

_cleanups: set[asyncio.Task[None]] = set()
"""Running cleanup tasks, referenced so they are not collected before they finish."""


@dataclass
class StartedStream:
    """A stream the chat service accepted, and where its messages arrive."""

    inbox: str
    subscription: Subscription
    deadline: float
    """Event-loop time by which the final message must have arrived."""

    timeout_ms: int
    session_id: str | None


async def start_stream(
    gateway: GatewayState,
    request: Request[Any, Any, Any],
    message: ServiceRequest,
    *,
    timeout_ms: int,
) -> StartedStream:
    """Subscribe to a fresh inbox and have the chat service accept a stream to it.

    Raises the chat service's error (400, 404, 502 with an open circuit...) before
    anything is streamed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_ms / 1000
    inbox = gateway.nats.new_inbox()
    subscription = await gateway.nats.subscribe(inbox)
    try:
        ack = await call_service(
            request,
            gateway.subjects.chat_stream,
            msgspec.structs.replace(message, stream_to=inbox),
            service="chat",
            timeout_ms=timeout_ms,
        )
    except BaseException:
        await subscription.unsubscribe()
        raise
    session_id = ack.get("sessionId") if isinstance(ack, dict) else None
    return StartedStream(inbox, subscription, deadline, timeout_ms, session_id)


async def relay_stream(
    gateway: GatewayState, stream: StartedStream, *, request_id: str
) -> AsyncIterator[bytes]:
    """Yield the SSE events of ``stream`` until its final message or its deadline."""
    loop = asyncio.get_running_loop()
    finished = False
    try:
        while True:
            remaining = stream.deadline - loop.time()
            try:
                if remaining <= 0:
                    raise nats.errors.TimeoutError
                msg = await stream.subscription.next_msg(timeout=remaining)
            except nats.errors.TimeoutError:
                log.warning("chat stream timed out", session_id=stream.session_id)
                timeout = GatewayTimeoutError(f"Request timeout after {stream.timeout_ms}ms")
                yield _event("error", error_body(timeout, request_id))
                return
            try:
                item = decode_stream_message(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("undecodable chat stream message skipped", session_id=stream.session_id)
                continue
            if isinstance(item, ChatToken):
                yield _event("token", {"text": item.text})
            elif isinstance(item, ChatStreamDone):
                finished = True
                yield _event("done", item.reply)
                return
            else:
                finished = True
                yield _event("error", error_body(error_from_wire(item.error), request_id))
                return
    finally:
        if not finished:
            log.info("chat stream stopped early, cancelling", session_id=stream.session_id)
        # The generator may be closed by a cancelled task, where awaiting is not
        # possible, so the cleanup runs as a task of its own.
        task = asyncio.get_running_loop().create_task(_close(gateway, stream, cancel=not finished))
        _cleanups.add(task)
        task.add_done_callback(_cleanups.discard)


async def _close(gateway: GatewayState, stream: StartedStream, *, cancel: bool) -> None:
    try:
        await stream.subscription.unsubscribe()
    except nats.errors.Error as error:
        log.debug("chat stream unsubscribe failed", error=str(error))
    if not cancel:
        return
    try:
        await gateway.nats.publish(
            gateway.subjects.chat_stream_cancel, ChatStreamCancel(stream_to=stream.inbox).encode()
        )
    except nats.errors.Error as error:
        log.warning("chat stream cancel could not be published", error=str(error))


def _event(name: str, data: Any) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode()
