"""One chat turn: from a visitor's message to the stored, redacted assistant reply.

``prepare`` validates the request, finds or creates the session and stores
the visitor's message. ``answer`` produces the reply: a fixed one for a blank
message, content search in offline mode, else the model with up to
``CHAT_MAX_TOOL_ROUNDS`` rounds of tool calls. It then redacts, stores and
returns the reply object of ``POST /api/v1/chat``. A provider failure leaves
the session and the visitor's message stored.

With ``on_token``, ``answer`` hands redacted text to the caller as the model
produces it; the reply's ``content`` is the same text in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portfolio_shared.contract.chat import ChatInput, validate_chat_request
from portfolio_shared.errors import BadRequestError, LlmError, NotFoundError
from portfolio_shared.logging import get_logger
from portfolio_shared.timeutil import format_timestamp, utc_now
from prometheus_client import Counter, Gauge

from portfolio_chat.conversation.redaction import Redactor, StreamRedactor
from portfolio_chat.grounding.tools import TOOL_DEFINITIONS
from portfolio_chat.llm.breaker import CircuitOpenError, CircuitState
from portfolio_chat.llm.errors import ProviderRejectedError, ProviderUnavailableError
from portfolio_chat.sessions.repository import NewMessage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from portfolio_shared.contract import ServiceRequest

    from portfolio_chat.grounding.offline import OfflineResponder
    from portfolio_chat.grounding.prompt import GroundingCache
    from portfolio_chat.grounding.tools import ToolResult, ToolRunner
    from portfolio_chat.llm.provider import LlmProvider
    from portfolio_chat.sessions.history import HistoryStore
    from portfolio_chat.sessions.repository import SessionRepository

__all__ = ["BLANK_MESSAGE_REPLY", "CHAT_SESSIONS_ACTIVE", "Conversation", "PreparedTurn"]

log = get_logger("chat.turns")

CHAT_MESSAGES = Counter("chat_messages_total", "Chat messages stored, by role.", ["role"])
CHAT_TOKENS = Counter("chat_tokens_total", "Provider tokens used by assistant replies.")
CHAT_SESSIONS_ACTIVE = Gauge(
    "chat_sessions_active",
    "Sessions this instance opened minus those it ended or expired.",
)

BLANK_MESSAGE_REPLY = (
    "Hi! It looks like your message was empty. Ask me anything about the projects, "
    "experience or skills in this portfolio."
)
"""Reply to a message of only whitespace, given without calling the provider."""

REJECTED_BY_KEY_STATUSES = frozenset({401, 403})
"""Provider rejections caused by the service's own key, reported as 502 rather than 400."""


@dataclass
class PreparedTurn:
    """A validated message, stored in its session, waiting for its reply."""

    chat: ChatInput
    session: dict[str, Any]
    history: list[dict[str, Any]]
    """Earlier messages of the session then this one, oldest first, as provider messages."""

    request_id: str | None = None
    tool_results: list[ToolResult] = field(default_factory=list)

    @property
    def session_id(self) -> str:
        return str(self.session["id"])


class Conversation:
    """Runs chat turns; one instance per service process."""

    def __init__(
        self,
        *,
        repository: SessionRepository,
        history: HistoryStore,
        grounding: GroundingCache,
        tools: ToolRunner,
        offline: OfflineResponder,
        provider: LlmProvider | None,
        max_tool_rounds: int,
        max_history_turns: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.history = history
        self.grounding = grounding
        self.tools = tools
        self.offline = offline
        self.provider = provider
        self.max_tool_rounds = max_tool_rounds
        self.max_history_turns = max_history_turns
        self.clock = clock

    async def send(self, request: ServiceRequest) -> dict[str, Any]:
        """Return the full JSON reply to one request."""
        return await self.answer(await self.prepare(request))

    # Before the reply

    async def prepare(self, request: ServiceRequest) -> PreparedTurn:
        """Validate, resolve the session and store the visitor's message."""
        chat = validate_chat_request(request)

        now = self.clock()
        session = await self._session_for(chat, request, now)
        history = _last_turns(await self._load_history(session["id"]), self.max_history_turns)

        await self.repository.add_messages(session["id"], [NewMessage("user", chat.message)], now)
        CHAT_MESSAGES.labels("user").inc()
        user_message = {"role": "user", "content": chat.message}
        await self.history.append(session["id"], [user_message])
        log.info(
            "chat message received",
            session_id=session["id"],
            request_id=request.request_id,
            chars=len(chat.message),
        )
        return PreparedTurn(chat, session, [*history, user_message], request.request_id)

    def ensure_provider_admits(self) -> None:
        """Raise the circuit's 502 now if a provider call would be rejected, so a stream
        can fail as a plain error before it starts."""
        if self.provider is None:
            return
        breaker = self.provider.breaker
        wait_s = breaker.retry_after_s()
        if wait_s > 0 and breaker.state is not CircuitState.CLOSED:
            raise LlmError("Circuit breaker is open", retry_after=wait_s)

    async def _session_for(
        self, chat: ChatInput, request: ServiceRequest, now: datetime
    ) -> dict[str, Any]:
        if chat.session_id is not None:
            session = await self.repository.get(chat.session_id)
            if session is None or session["visitor_id"] != chat.visitor_id:
                raise NotFoundError(f"Session with identifier '{chat.session_id}' not found")
            if session["status"] == "active" and session["expires_at"] > format_timestamp(now):
                return session
        else:
            session = await self.repository.find_reusable(chat.visitor_id, now)
            if session is not None:
                return session
        created = await self.repository.create(
            visitor_id=chat.visitor_id,
            ip_hash=request.client_hash or "",
            user_agent=request.user_agent,
            now=now,
        )
        CHAT_SESSIONS_ACTIVE.inc()
        log.info("chat session created", session_id=created["id"], request_id=request.request_id)
        return created

    async def _load_history(self, session_id: str) -> list[dict[str, Any]]:
        cached = await self.history.load(session_id)
        if cached is not None:
            return cached
        rows = await self.repository.messages(
            session_id, limit=self.history.max_messages, newest=True
        )
        rebuilt = [{"role": row["role"], "content": row["content"]} for row in rows]
        if rebuilt:
            await self.history.replace(session_id, rebuilt)
        return rebuilt

    # The reply

    async def answer(
        self, turn: PreparedTurn, on_token: Callable[[str], Awaitable[None]] | None = None
    ) -> dict[str, Any]:
        """Produce, redact, store and return the assistant's reply to ``turn``."""
        grounding = await self.grounding.current()
        redactor = Redactor(grounding.owner_emails)
        offline = False

        if turn.chat.blank:
            content, tokens = BLANK_MESSAGE_REPLY, 0
        elif self.provider is None:
            content, tokens, offline = (
                await self.offline.answer(turn.chat.message, grounding),
                0,
                True,
            )
        else:
            stream = StreamRedactor(redactor) if on_token is not None else None
            content, tokens = await self._ask_model(turn, grounding.prompt, stream, on_token)

        content = redactor.redact(content)
        if on_token is not None and (turn.chat.blank or offline):
            await on_token(content)

        now = self.clock()
        stored = await self.repository.add_messages(
            turn.session_id, [NewMessage("assistant", content, tokens)], now
        )
        await self.history.append(turn.session_id, [{"role": "assistant", "content": content}])
        CHAT_MESSAGES.labels("assistant").inc()
        CHAT_TOKENS.inc(tokens)
        log.info(
            "chat reply stored",
            session_id=turn.session_id,
            request_id=turn.request_id,
            tokens=tokens,
            tool_calls=len(turn.tool_results),
            offline=offline,
        )

        reply: dict[str, Any] = {
            "sessionId": turn.session_id,
            "message": {
                "id": stored[0]["id"],
                "role": "assistant",
                "content": content,
                "createdAt": stored[0]["created_at"],
            },
            "tokensUsed": tokens,
        }
        if offline:
            reply["offline"] = True
        if turn.chat.include_tool_calls:
            reply["toolCalls"] = [result.to_dict() for result in turn.tool_results]
        return reply

    async def _ask_model(
        self,
        turn: PreparedTurn,
        system_prompt: str,
        stream: StreamRedactor | None,
        on_token: Callable[[str], Awaitable[None]] | None,
    ) -> tuple[str, int]:
        """Run the tool loop; return the model's text (all rounds) and the tokens used."""
        assert self.provider is not None
        messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
        messages.extend(turn.history)
        relay = None
        if stream is not None and on_token is not None:
            relay = _relay(stream, on_token)
        text: list[str] = []
        tokens = 0

        for round_number in range(self.max_tool_rounds + 1):
            tools_allowed = round_number < self.max_tool_rounds
            try:
                completion = await self.provider.complete(
                    messages, tools=TOOL_DEFINITIONS if tools_allowed else None, on_token=relay
                )
            except CircuitOpenError as error:
                raise LlmError("Circuit breaker is open", retry_after=error.retry_after_s) from None
            except ProviderUnavailableError as error:
                raise LlmError(error.message) from None
            except ProviderRejectedError as error:
                if error.status in REJECTED_BY_KEY_STATUSES:
                    raise LlmError(error.message) from None
                raise BadRequestError(
                    f"The language model rejected the request: {error.message}"
                ) from None
            tokens += completion.total_tokens
            text.append(completion.content)
            if not (completion.tool_calls and tools_allowed):
                break
            messages.append(
                {
                    "role": "assistant",
                    "content": completion.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in completion.tool_calls
                    ],
                }
            )
            for call in completion.tool_calls:
                result = await self.tools.run(call.id, call.name, call.arguments)
                turn.tool_results.append(result)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result.result})
                log.info(
                    "tool call completed",
                    session_id=turn.session_id,
                    request_id=turn.request_id,
                    tool=call.name,
                    round=round_number + 1,
                )

        content = "".join(text)
        if not content.strip():
            raise LlmError("No response from model")
        if stream is not None and on_token is not None:
            rest = stream.finish()
            if rest:
                await on_token(rest)
        return content, tokens


def _last_turns(history: list[dict[str, Any]], turns: int) -> list[dict[str, Any]]:
    """Return at most ``turns`` question-and-answer pairs from the end, starting with a question."""
    recent = history[-2 * turns :]
    while recent and recent[0].get("role") != "user":
        recent = recent[1:]
    return recent


def _relay(
    stream: StreamRedactor, on_token: Callable[[str], Awaitable[None]]
) -> Callable[[str], Awaitable[None]]:
    async def relay(piece: str) -> None:
        released = stream.feed(piece)
        if released:
            await on_token(released)

    return relay
