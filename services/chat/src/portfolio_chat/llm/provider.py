"""Client of an OpenAI-compatible chat completions API, behind the circuit breaker.

``LlmProvider.complete`` sends one request (``POST <LLM_BASE_URL>/chat/completions``),
streaming when given an ``on_token`` callback, and returns the text, the tool
calls and the tokens used. Each attempt takes a permit from the circuit
breaker, so an open circuit stops retries as well as new calls. Timeouts,
network errors, 5xx and 429 are retried up to ``LLM_MAX_RETRIES`` times with
exponential backoff (base delay doubled each time, plus up to 25 % jitter),
except once a streamed token has reached the caller: a retry would repeat it.

Transport failures are mapped here, once, to ``ProviderUnavailableError`` or
``ProviderRejectedError``; no caller of this module receives an httpx exception.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from portfolio_shared.logging import get_logger
from prometheus_client import Counter, Histogram

from portfolio_chat.llm.breaker import CircuitOpenError
from portfolio_chat.llm.errors import ProviderRejectedError, ProviderUnavailableError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from portfolio_chat.llm.breaker import CircuitBreaker
    from portfolio_chat.settings import ChatSettings

__all__ = ["LLM_FAILURES", "Completion", "LlmProvider", "ToolCall"]

log = get_logger("chat.llm")

LLM_REQUESTS = Counter(
    "llm_requests_total",
    "Provider calls by model and outcome (success, error).",
    ["model", "status"],
)
LLM_DURATION = Histogram(
    "llm_request_duration_seconds",
    "Time of one provider attempt, by model.",
    ["model"],
    buckets=(0.5, 1, 2, 5, 10, 30),
)
LLM_FAILURES = Counter(
    "llm_failures_total",
    "Provider calls that failed, by kind: timeout, network, http_5xx, rate_limited, "
    "bad_response, rejected, circuit_open.",
    ["kind"],
)

JITTER_FRACTION = 0.25
"""Largest random share added to a retry delay, so replicas do not retry in step."""


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is the raw JSON text it sent."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    """The outcome of one successful provider call."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    total_tokens: int


class LlmProvider:
    """One provider endpoint with its retry policy and circuit breaker."""

    def __init__(
        self,
        settings: ChatSettings,
        breaker: CircuitBreaker,
        *,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if settings.llm_base_url is None:
            raise ValueError("LlmProvider needs LLM_BASE_URL; without it chat runs offline.")
        self.settings = settings
        self.breaker = breaker
        self.model = settings.llm_model
        self._url = f"{settings.llm_base_url}/chat/completions"
        self._timeout_s = settings.llm_request_timeout_ms / 1000
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout_s, connect=min(self._timeout_s, 10.0))
        )
        self._sleep = sleep
        self._headers = {"Content-Type": "application/json"}
        if settings.llm_api_key is not None:
            self._headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"

    async def close(self) -> None:
        await self._http.aclose()

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        on_token: Callable[[str], Awaitable[None]] | None = None,
    ) -> Completion:
        """Run one call with retries; stream text to ``on_token`` when it is given.

        Raises ``CircuitOpenError`` when the breaker rejects an attempt,
        ``ProviderUnavailableError`` when every attempt failed and
        ``ProviderRejectedError`` when the provider rejected the request.
        An exception raised by ``on_token`` ends the call and propagates.
        """
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.settings.llm_max_tokens,
            "temperature": self.settings.llm_temperature,
        }
        if tools:
            payload["tools"] = tools
            payload["tool_choice"] = "auto"
        if on_token is not None:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}

        attempt = 0
        while True:
            try:
                permit = self.breaker.admit()
            except CircuitOpenError:
                LLM_FAILURES.labels("circuit_open").inc()
                raise
            streamed = _StreamProgress()
            started = time.perf_counter()
            try:
                if on_token is None:
                    completion = await self._post(payload)
                else:
                    completion = await self._stream(payload, on_token, streamed)
            except ProviderUnavailableError as error:
                permit.failure()
                self._record(started, "error", error.kind)
                if attempt >= self.settings.llm_max_retries or streamed.tokens:
                    log.warning(
                        "llm call failed",
                        kind=error.kind,
                        error=error.message,
                        attempts=attempt + 1,
                    )
                    raise
                delay = self._retry_delay(attempt)
                attempt += 1
                log.warning(
                    "llm call failed, retrying",
                    kind=error.kind,
                    error=error.message,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                )
                await self._sleep(delay)
                continue
            except ProviderRejectedError as error:
                permit.release()
                self._record(started, "error", error.kind)
                log.warning("llm rejected the request", status=error.status, error=error.message)
                raise
            except BaseException:
                permit.release()
                raise
            permit.success()
            self._record(started, "success", None)
            return completion

    def _retry_delay(self, attempt: int) -> float:
        base: float = self.settings.llm_retry_base_delay_ms / 1000 * 2.0**attempt
        return base * (1 + random.random() * JITTER_FRACTION)

    def _record(self, started: float, status: str, failure_kind: str | None) -> None:
        LLM_DURATION.labels(self.model).observe(time.perf_counter() - started)
        LLM_REQUESTS.labels(self.model, status).inc()
        if failure_kind is not None:
            LLM_FAILURES.labels(failure_kind).inc()

    # One attempt

    async def _post(self, payload: dict[str, Any]) -> Completion:
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.post(self._url, json=payload, headers=self._headers)
        except (TimeoutError, httpx.TimeoutException):
            raise self._timeout_error() from None
        except httpx.HTTPError as error:
            raise _network_error(error) from None
        _raise_for_status(response.status_code, response.content)
        try:
            body = response.json()
            choice = body["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _no_response() from None
        tool_calls = tuple(
            ToolCall(
                id=str(call.get("id") or f"call_{index + 1}"),
                name=str(call.get("function", {}).get("name", "")),
                arguments=str(call.get("function", {}).get("arguments") or "{}"),
            )
            for index, call in enumerate(message.get("tool_calls") or [])
        )
        content = message.get("content") or ""
        if not isinstance(content, str) or (not content and not tool_calls):
            raise _no_response()
        return Completion(content, tool_calls, _total_tokens(body))

    async def _stream(
        self,
        payload: dict[str, Any],
        on_token: Callable[[str], Awaitable[None]],
        progress: _StreamProgress,
    ) -> Completion:
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        total_tokens = 0
        finished = False
        try:
            async with self._http.stream(
                "POST", self._url, json=payload, headers=self._headers
            ) as response:
                if response.status_code != 200:
                    _raise_for_status(response.status_code, await response.aread())
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    # Some servers ignore "stream": true and return one JSON object.
                    raise _no_response()
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        finished = True
                        break
                    chunk = _parse_chunk(data)
                    usage = chunk.get("usage")
                    if isinstance(usage, dict):
                        total_tokens = int(usage.get("total_tokens") or 0)
                    for choice in chunk.get("choices") or []:
                        if choice.get("finish_reason"):
                            finished = True
                        delta = choice.get("delta") or {}
                        piece = delta.get("content")
                        if isinstance(piece, str) and piece:
                            text.append(piece)
                            progress.tokens += 1
                            await on_token(piece)
                        for call in delta.get("tool_calls") or []:
                            _merge_tool_call(calls, call)
        except httpx.TimeoutException:
            raise self._timeout_error() from None
        except httpx.HTTPError as error:
            raise _network_error(error) from None
        if not finished:
            raise ProviderUnavailableError(
                "Network error: the stream ended before the model finished", kind="network"
            )
        tool_calls = tuple(
            ToolCall(
                id=call.get("id") or f"call_{index + 1}",
                name=call.get("name", ""),
                arguments=call.get("arguments") or "{}",
            )
            for index, call in sorted(calls.items())
        )
        content = "".join(text)
        if not content and not tool_calls:
            raise _no_response()
        return Completion(content, tool_calls, total_tokens)

    def _timeout_error(self) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"Request timeout after {self.settings.llm_request_timeout_ms}ms", kind="timeout"
        )


@dataclass
class _StreamProgress:
    tokens: int = 0
    """Text pieces already handed to the caller."""


def _raise_for_status(status: int, body: bytes) -> None:
    if status < 400:
        return
    message = _error_message(body) or f"HTTP {status}"
    if status == 429:
        raise ProviderUnavailableError(message, kind="rate_limited")
    if status == 408:
        raise ProviderUnavailableError(message, kind="timeout")
    if status >= 500:
        raise ProviderUnavailableError(message, kind="http_5xx")
    raise ProviderRejectedError(message, status=status)


def _error_message(body: bytes) -> str | None:
    """Return the provider's ``error.message``, if the body carries one."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return None


def _network_error(error: httpx.HTTPError) -> ProviderUnavailableError:
    detail = str(error) or type(error).__name__
    return ProviderUnavailableError(f"Network error: {detail}", kind="network")


def _no_response() -> ProviderUnavailableError:
    return ProviderUnavailableError("No response from model", kind="bad_response")


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise _no_response() from None
    if not isinstance(chunk, dict):
        raise _no_response()
    error = chunk.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise ProviderUnavailableError(str(message or "No response from model"), kind="http_5xx")
    return chunk


def _merge_tool_call(calls: dict[int, dict[str, str]], delta: dict[str, Any]) -> None:
    """Add one streamed tool-call fragment; arguments arrive in pieces under one index."""
    index = int(delta.get("index", len(calls)))
    call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    if delta.get("id"):
        call["id"] = str(delta["id"])
    function = delta.get("function") or {}
    if function.get("name"):
        call["name"] += str(function["name"])
    if function.get("arguments"):
        call["arguments"] += str(function["arguments"])


def _total_tokens(body: dict[str, Any]) -> int:
    usage = body.get("usage")
    if isinstance(usage, dict):
        return int(usage.get("total_tokens") or 0)
    return 0
