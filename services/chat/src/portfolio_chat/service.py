"""Wiring of the chat service: settings in, a running ``ServiceRuntime`` out.

``ChatService`` builds the parts (database, session history, content client,
grounding, provider with its circuit breaker, conversation), registers the
NATS endpoints and readiness checks, and runs two background jobs: the
``ContentChanged`` consumer that keeps grounding fresh, and the sweep that
marks overdue sessions expired.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import msgspec
from nats.js.api import DeliverPolicy
from portfolio_shared.contract import CheckResult, decode_event
from portfolio_shared.contract.events import ContentChanged
from portfolio_shared.events_stream import ensure_events_stream
from portfolio_shared.logging import get_logger
from portfolio_shared.redis_link import RedisLink
from portfolio_shared.runtime import ServiceRuntime

from portfolio_chat.conversation.streaming import StreamRelay
from portfolio_chat.conversation.turns import CHAT_SESSIONS_ACTIVE, Conversation
from portfolio_chat.grounding.content_client import ContentClient
from portfolio_chat.grounding.offline import OfflineResponder
from portfolio_chat.grounding.prompt import GroundingCache
from portfolio_chat.grounding.tools import ToolRunner
from portfolio_chat.llm.breaker import BreakerConfig, CircuitBreaker, CircuitState
from portfolio_chat.llm.provider import LlmProvider
from portfolio_chat.sessions.admin import SessionAdmin
from portfolio_chat.sessions.database import ChatDatabase
from portfolio_chat.sessions.history import HistoryStore
from portfolio_chat.sessions.repository import SessionRepository

if TYPE_CHECKING:
    from types import TracebackType

    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

    from portfolio_chat.settings import ChatSettings

__all__ = ["ChatService"]

log = get_logger("chat.service")

VERSION = "0.1.0"


class ChatService:
    """The chat service of one process; use as an async context manager."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.runtime = ServiceRuntime(
            "chat", settings, version=VERSION, description="AI chat grounded on the portfolio"
        )
        self.database = ChatDatabase(
            settings.database_url,
            auth_token=(
                settings.chat_database_auth_token.get_secret_value()
                if settings.chat_database_auth_token
                else None
            ),
        )
        self.repository = SessionRepository(
            self.database, max_age_s=settings.chat_session_max_age_s
        )
        self.redis = RedisLink(
            settings.redis_url, component="chat_sessions", key_prefix=settings.redis_key_prefix
        )
        self.history = HistoryStore(
            self.redis,
            max_messages=2 * settings.chat_history_max_turns + 1,
            idle_ttl_s=settings.chat_history_idle_ttl_s,
        )
        self.breaker = CircuitBreaker(
            "llm",
            BreakerConfig(
                failure_threshold=settings.circuit_breaker_failure_threshold,
                reset_timeout_s=settings.circuit_breaker_reset_timeout,
                success_threshold=settings.circuit_breaker_success_threshold,
                half_open_max_calls=settings.circuit_breaker_half_open_max_calls,
            ),
        )
        self.provider = None if settings.offline else LlmProvider(settings, self.breaker)
        self.admin = SessionAdmin(self.repository, self.history)
        self._background: list[asyncio.Task[None]] = []
        self._events_subscription: Any = None
        # Parts that need the NATS connection are built on enter.
        self.conversation: Conversation
        self.grounding: GroundingCache
        self.relay: StreamRelay

        subjects = self.runtime.subjects
        self.runtime.add_endpoint("send", subjects.chat_send, self._send)
        self.runtime.add_endpoint("stream", subjects.chat_stream, self._stream)
        self.runtime.add_endpoint(
            "sessions-list", subjects.chat_admin_sessions_list, self.admin.list_sessions
        )
        self.runtime.add_endpoint(
            "sessions-get", subjects.chat_admin_sessions_get, self.admin.get_session
        )
        self.runtime.add_endpoint(
            "sessions-end", subjects.chat_admin_sessions_end, self.admin.end_session
        )
        self.runtime.add_check("llm", self._check_llm, critical=False)
        self.runtime.add_check("session_store", self._check_session_store, critical=False)
        self.runtime.add_check("chat_database", self._check_database, critical=False)
        self.runtime.on_reconnected(self._after_reconnect)

    async def __aenter__(self) -> ChatService:
        await self.database.open()
        content = ContentClient(
            lambda: self.runtime.client,
            self.runtime.subjects,
            timeout_s=self.settings.nats_request_timeout_ms / 1000,
        )
        owner = (
            frozenset({self.settings.chat_owner_email.lower()})
            if self.settings.chat_owner_email
            else frozenset()
        )
        self.grounding = GroundingCache(
            content, max_chars=self.settings.chat_prompt_max_chars, extra_owner_emails=owner
        )
        self.conversation = Conversation(
            repository=self.repository,
            history=self.history,
            grounding=self.grounding,
            tools=ToolRunner(content),
            offline=OfflineResponder(content),
            provider=self.provider,
            max_tool_rounds=self.settings.chat_max_tool_rounds,
            max_history_turns=self.settings.chat_history_max_turns,
        )
        self.relay = StreamRelay(self.conversation, self.runtime)

        await self.runtime.__aenter__()
        await self.runtime.client.subscribe(
            self.runtime.subjects.chat_stream_cancel, cb=self.relay.on_cancel
        )
        await self._subscribe_to_content_events()
        self._background.append(asyncio.create_task(self._sweep_expired_sessions()))
        log.info(
            "chat service ready",
            offline=self.settings.offline,
            model=None if self.settings.offline else self.settings.llm_model,
            redis=self.redis.configured,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for task in self._background:
            task.cancel()
        if self._events_subscription is not None:
            with contextlib.suppress(Exception):
                await self._events_subscription.unsubscribe()
        await self.runtime.shutdown()
        if self.provider is not None:
            await self.provider.close()
        await self.redis.close()
        await self.database.close()

    # Endpoints

    async def _send(self, request: Any) -> dict[str, Any]:
        return await self.conversation.send(request)

    async def _stream(self, request: Any) -> dict[str, Any]:
        return await self.relay.handle(request)

    # Readiness

    async def _check_llm(self) -> CheckResult:
        if self.settings.offline:
            return CheckResult(
                status="ok", critical=False, fallback="offline", detail="LLM_BASE_URL is not set"
            )
        state = self.breaker.state
        if state is CircuitState.OPEN:
            return CheckResult(
                status="error",
                critical=False,
                detail=f"circuit open, half-open in {self.breaker.retry_after_s()}s",
            )
        return CheckResult(status="ok", critical=False, detail=f"circuit {state.value}")

    async def _check_session_store(self) -> CheckResult:
        return self.redis.check()

    async def _check_database(self) -> CheckResult:
        await self.database.ping()
        return CheckResult(status="ok", critical=False)

    # Background work

    async def _subscribe_to_content_events(self) -> None:
        js: JetStreamContext = self.runtime.client.jetstream()
        try:
            await ensure_events_stream(js, self.runtime.subjects)
            self._events_subscription = await js.subscribe(
                self.runtime.subjects.content_changed,
                cb=self._on_content_event,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
        except Exception as error:
            # Without events the grounding would never refresh, so this is an error. A
            # reconnect retries the subscription.
            log.error(
                "content events subscription failed", error=str(error) or type(error).__name__
            )

    async def _on_content_event(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError:
            log.warning("undecodable event ignored", subject=msg.subject)
            return
        if isinstance(event, ContentChanged):
            self.grounding.invalidate(f"content {event.change.value}: {event.content_id}")

    async def _after_reconnect(self) -> None:
        # Events published while disconnected may be missed by the ordered consumer's
        # "deliver new" start, so rebuild from the source.
        self.grounding.invalidate("nats reconnected")
        if self._events_subscription is None:
            await self._subscribe_to_content_events()

    async def _sweep_expired_sessions(self) -> None:
        while True:
            try:
                expired = await self.repository.expire_overdue()
            except Exception as error:
                log.warning("session expiry sweep failed", error=str(error) or type(error).__name__)
            else:
                if expired:
                    CHAT_SESSIONS_ACTIVE.dec(expired)
                    log.info("sessions expired", count=expired)
            await asyncio.sleep(self.settings.chat_expiry_sweep_s)

    # Process lifetime

    async def run_until_stopped(self) -> None:
        self.runtime.install_signal_handlers()
        await self.runtime.wait_until_stopped()
