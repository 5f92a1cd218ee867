"""Settings of the chat service, read from the environment at startup."""

from __future__ import annotations

from portfolio_shared.settings import CommonSettings
from pydantic import Field, SecretStr, field_validator

__all__ = ["ChatSettings"]


class ChatSettings(CommonSettings):
    """Variables of the chat service on top of ``CommonSettings``."""

    llm_base_url: str | None = None
    """Base URL of an OpenAI-compatible API (``https://api.openai.com/v1``, an Ollama or
    vLLM server's ``/v1``); unset means offline mode, answering from content search."""

    llm_api_key: SecretStr | None = None
    """Bearer key sent to the provider; never logged."""

    llm_model: str = "gpt-4o-mini"
    llm_max_tokens: int = Field(default=1024, ge=1, le=100_000)
    """Most completion tokens one provider call may produce."""

    llm_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    llm_request_timeout_ms: int = Field(default=30_000, ge=100, le=600_000)
    """Deadline of one provider attempt, in milliseconds (between chunks when streaming)."""

    llm_max_retries: int = Field(default=3, ge=0, le=10)
    """Retries of one provider call after a timeout, a network error, a 5xx or a 429."""

    llm_retry_base_delay_ms: int = Field(default=1000, ge=0, le=60_000)
    """First retry delay, in milliseconds; each later retry doubles it (+ up to 25 % jitter)."""

    circuit_breaker_failure_threshold: int = Field(default=5, ge=1, le=1000)
    """Consecutive provider failures that open the circuit."""

    circuit_breaker_reset_timeout: float = Field(default=30.0, gt=0, le=3600)
    """Seconds the circuit stays open before it lets trial calls through (half-open)."""

    circuit_breaker_success_threshold: int = Field(default=2, ge=1, le=1000)
    """Successful trial calls in half-open state that close the circuit."""

    circuit_breaker_half_open_max_calls: int = Field(default=1, ge=1, le=1000)
    """Trial calls allowed at once in half-open state; the rest fail fast."""

    chat_database_url: str | None = None
    """libSQL URL of the chat tables; unset means ``file:<DATA_DIR>/chat.db``."""

    chat_database_auth_token: SecretStr | None = None
    chat_session_max_age_s: int = Field(default=86_400, ge=60)
    """Lifetime of a session from its creation (``expiresAt``), in seconds."""

    chat_history_idle_ttl_s: int = Field(default=1800, ge=1)
    """Idle time after which a session's cached history leaves Redis, in seconds."""

    chat_history_max_turns: int = Field(default=10, ge=1, le=100)
    """Most earlier question-and-answer turns sent to the provider with a new message."""

    chat_max_tool_rounds: int = Field(default=5, ge=0, le=20)
    """Most rounds of tool calls the model may request for one message."""

    chat_expiry_sweep_s: float = Field(default=3600.0, gt=0)
    """Interval of the job that marks overdue active sessions ``expired``, in seconds."""

    chat_owner_email: str | None = None
    """The owner's public contact address, kept by output redaction; unset means the
    ``email`` fields of published ``contact`` content."""

    chat_prompt_max_chars: int = Field(default=24_000, ge=1000)
    """Most characters of published content embedded in the system prompt."""

    @field_validator("llm_base_url", "chat_owner_email", "chat_database_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        return value.strip()

    @field_validator("llm_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.openai.com/v1")
        return value.rstrip("/") if value else value

    @property
    def offline(self) -> bool:
        """Whether no provider is configured, so replies come from content search."""
        return self.llm_base_url is None

    @property
    def database_url(self) -> str:
        return self.chat_database_url or f"file:{self.data_dir / 'chat.db'}"
