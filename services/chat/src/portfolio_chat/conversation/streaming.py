"""The stream endpoint: reply at once with an ack, then publish the turn as it is produced.

The request is validated and the visitor's message stored before the ack, so
a bad request or an open circuit is a plain error reply. After the ack a task
publishes ``ChatToken`` messages to the request's ``streamTo`` subject, then
one ``ChatStreamDone`` (the JSON reply) or ``ChatStreamError``. A
``ChatStreamCancel`` naming that subject (the client went away), or a failed
publish, cancels the task and with it the provider call.

NOTE: a gateway that dies without sending the cancel leaves the turn running
to its end (bounded by the provider timeouts), publishing to an inbox that
nobody reads.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from portfolio_shared.contract.streaming import (
    ChatStreamCancel,
    ChatStreamDone,
    ChatStreamError,
    ChatToken,
    encode_stream_message,
)
from portfolio_shared.errors import BadRequestError, PortfolioError
from portfolio_shared.logging import get_logger
from prometheus_client import Counter

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from portfolio_shared.contract import ServiceRequest
    from portfolio_shared.nats_client import NatsClient
    from portfolio_shared.runtime import ServiceRuntime

    from portfolio_chat.conversation.turns import Conversation, PreparedTurn

__all__ = ["StreamRelay"]

log = get_logger("chat.stream")

CHAT_STREAMS = Counter(
    "chat_streams_total", "Streamed chat turns by outcome (done, error, cancelled).", ["outcome"]
)


class StreamRelay:
    """Runs streamed turns of this instance and stops them on request."""

    def __init__(self, conversation: Conversation, runtime: ServiceRuntime) -> None:
        self.conversation = conversation
        self.runtime = runtime
        self._streams: dict[str, asyncio.Task[None]] = {}

    @property
    def client(self) -> NatsClient:
        return self.runtime.client

    async def handle(self, request: ServiceRequest) -> dict[str, Any]:
        """Start a streamed turn and return the ack ``{"sessionId", "streamTo"}``."""
        stream_to = request.stream_to
        if not stream_to:
            raise BadRequestError("A stream request needs a streamTo subject")
        turn = await self.conversation.prepare(request)
        self.conversation.ensure_provider_admits()

        task = asyncio.create_task(self._run(turn, stream_to))
        self._streams[stream_to] = task
        task.add_done_callback(lambda _: self._streams.pop(stream_to, None))
        self.runtime.track(task)
        return {"sessionId": turn.session_id, "streamTo": stream_to}

    async def on_cancel(self, msg: Msg) -> None:
        """Cancel the named stream if this instance runs it (every instance hears the broadcast)."""
        try:
            cancel = ChatStreamCancel.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("malformed stream cancel message ignored")
            return
        task = self._streams.get(cancel.stream_to)
        if task is not None:
            log.info("stream cancelled by the client", stream_to=cancel.stream_to)
            task.cancel()

    async def _run(self, turn: PreparedTurn, stream_to: str) -> None:
        seq = 0

        async def publish_token(text: str) -> None:
            nonlocal seq
            await self.client.publish(
                stream_to, encode_stream_message(ChatToken(seq=seq, text=text))
            )
            seq += 1

        try:
            reply = await self.conversation.answer(turn, on_token=publish_token)
            await self.client.publish(
                stream_to, encode_stream_message(ChatStreamDone(seq=seq, reply=reply))
            )
            CHAT_STREAMS.labels("done").inc()
        except asyncio.CancelledError:
            CHAT_STREAMS.labels("cancelled").inc()
            log.info(
                "streamed turn stopped", session_id=turn.session_id, request_id=turn.request_id
            )
            raise
        except PortfolioError as error:
            CHAT_STREAMS.labels("error").inc()
            await self._publish_error(stream_to, seq, error, turn)
        except Exception as error:
            CHAT_STREAMS.labels("error").inc()
            log.exception(
                "streamed turn failed", session_id=turn.session_id, request_id=turn.request_id
            )
            if not _is_publish_failure(error):
                await self._publish_error(
                    stream_to, seq, PortfolioError("Internal server error"), turn
                )

    async def _publish_error(
        self, stream_to: str, seq: int, error: PortfolioError, turn: PreparedTurn
    ) -> None:
        log.warning(
            "streamed turn ended with an error",
            code=error.code.value,
            error=error.message,
            session_id=turn.session_id,
            request_id=turn.request_id,
        )
        try:
            await self.client.publish(
                stream_to, encode_stream_message(ChatStreamError(seq=seq, error=error.to_dict()))
            )
        except Exception as publish_error:
            log.warning("stream error could not be published", error=str(publish_error))


def _is_publish_failure(error: Exception) -> bool:
    import nats.errors

    return isinstance(error, nats.errors.Error)
