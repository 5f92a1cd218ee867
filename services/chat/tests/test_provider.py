"""The provider client against the fake OpenAI-compatible server: parsing, streaming,
retries, failure mapping and the breaker in front of each attempt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from portfolio_chat.llm.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError, CircuitState
from portfolio_chat.llm.errors import ProviderRejectedError, ProviderUnavailableError
from portfolio_chat.llm.provider import LlmProvider
from portfolio_chat.settings import ChatSettings
from portfolio_shared.testing.fake_llm import FakeReply, FakeToolCall
from portfolio_shared.testing.servers import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from portfolio_shared.testing.fake_llm import FakeLlm

MESSAGES = [{"role": "user", "content": "Hi"}]


class Sleeps:
    """Records retry delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def make_provider(
    fake_llm: FakeLlm,
) -> AsyncIterator[Callable[..., tuple[LlmProvider, Sleeps]]]:
    providers: list[LlmProvider] = []

    def make(breaker: CircuitBreaker | None = None, **overrides: Any) -> tuple[LlmProvider, Sleeps]:
        values: dict[str, Any] = {
            "llm_base_url": fake_llm.base_url,
            "llm_api_key": "sk-test-secret",
            "llm_max_retries": 0,
        }
        values.update(overrides)
        sleeps = Sleeps()
        provider = LlmProvider(
            ChatSettings(**values), breaker or CircuitBreaker("llm"), sleep=sleeps
        )
        providers.append(provider)
        return provider, sleeps

    yield make
    for provider in providers:
        await provider.close()


async def test_completion_text_and_tokens(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider()
    fake_llm.script(FakeReply.reply_text("Hello!", total_tokens=12))

    completion = await provider.complete(MESSAGES)

    assert completion.content == "Hello!"
    assert completion.total_tokens == 12


async def test_request_carries_model_key_and_limits(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider(llm_model="tiny", llm_max_tokens=77, llm_temperature=0.2)

    await provider.complete(MESSAGES)

    body = fake_llm.requests[0]
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("tiny", 77, 0.2)
    assert fake_llm.headers[0]["authorization"] == "Bearer sk-test-secret"


async def test_tool_calls_are_parsed(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider()
    fake_llm.script(FakeReply.call_tools(FakeToolCall("list_content", {"type": "project"})))

    completion = await provider.complete(MESSAGES, tools=[{"type": "function"}])

    assert [(call.id, call.name, call.arguments) for call in completion.tool_calls] == [
        ("call_1", "list_content", '{"type": "project"}')
    ]


async def test_stream_hands_over_each_piece(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider()
    fake_llm.script(FakeReply.reply_text("one two three", total_tokens=9))
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    completion = await provider.complete(MESSAGES, on_token=collect)

    assert pieces == ["one ", "two ", "three"]
    assert completion.content == "one two three"
    assert completion.total_tokens == 9


async def test_streamed_tool_calls_are_assembled(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider()
    fake_llm.script(FakeReply.call_tools(FakeToolCall("get_content", {"type": "a", "slug": "b"})))

    async def ignore(_: str) -> None:
        return None

    completion = await provider.complete(MESSAGES, tools=[{"type": "function"}], on_token=ignore)

    assert completion.tool_calls[0].name == "get_content"
    assert completion.tool_calls[0].arguments == '{"type": "a", "slug": "b"}'


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_transient_failures_are_retried(
    make_provider: Any, fake_llm: FakeLlm, status: int
) -> None:
    provider, _ = make_provider(llm_max_retries=2)
    fake_llm.script(FakeReply.error_status(status), FakeReply.reply_text("Recovered"))

    completion = await provider.complete(MESSAGES)

    assert completion.content == "Recovered"
    assert fake_llm.request_count == 2


async def test_retry_delays_double_with_bounded_jitter(
    make_provider: Any, fake_llm: FakeLlm
) -> None:
    provider, sleeps = make_provider(llm_max_retries=3, llm_retry_base_delay_ms=1000)
    fake_llm.script(*[FakeReply.error_status(500)] * 4)

    with pytest.raises(ProviderUnavailableError):
        await provider.complete(MESSAGES)

    for delay, base in zip(sleeps.delays, (1.0, 2.0, 4.0), strict=True):
        assert base <= delay <= base * 1.25


async def test_provider_message_is_kept(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider()
    fake_llm.script(FakeReply.error_status(503, "model overloaded"))

    with pytest.raises(ProviderUnavailableError) as caught:
        await provider.complete(MESSAGES)

    assert caught.value.message == "model overloaded"
    assert caught.value.kind == "http_5xx"


async def test_rejection_is_not_retried_nor_a_failure(
    make_provider: Any, fake_llm: FakeLlm
) -> None:
    breaker = CircuitBreaker("llm", BreakerConfig(failure_threshold=1))
    provider, _ = make_provider(breaker, llm_max_retries=3)
    fake_llm.script(FakeReply.error_status(400, "context too long"))

    with pytest.raises(ProviderRejectedError) as caught:
        await provider.complete(MESSAGES)

    assert caught.value.status == 400
    assert fake_llm.request_count == 1
    assert breaker.state is CircuitState.CLOSED


async def test_hang_times_out(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider(llm_request_timeout_ms=200)
    fake_llm.script(FakeReply.hang())

    with pytest.raises(ProviderUnavailableError) as caught:
        await provider.complete(MESSAGES)

    assert caught.value.message == "Request timeout after 200ms"


async def test_garbage_is_no_response(make_provider: Any, fake_llm: FakeLlm) -> None:
    provider, _ = make_provider()
    fake_llm.script(FakeReply.garbage())

    with pytest.raises(ProviderUnavailableError, match="No response from model"):
        await provider.complete(MESSAGES)


async def test_unreachable_provider_is_network_error() -> None:
    settings = ChatSettings(llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_max_retries=0)
    provider = LlmProvider(settings, CircuitBreaker("llm"))
    try:
        with pytest.raises(ProviderUnavailableError, match=r"^Network error: "):
            await provider.complete(MESSAGES)
    finally:
        await provider.close()


async def test_cut_stream_is_not_retried_after_a_token(
    make_provider: Any, fake_llm: FakeLlm
) -> None:
    provider, _ = make_provider(llm_max_retries=3)
    fake_llm.script(FakeReply.cut("partial answer here"))
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    with pytest.raises(ProviderUnavailableError) as caught:
        await provider.complete(MESSAGES, on_token=collect)

    assert caught.value.kind == "network"
    assert pieces == ["partial "]
    assert fake_llm.request_count == 1


async def test_open_circuit_stops_retries(make_provider: Any, fake_llm: FakeLlm) -> None:
    breaker = CircuitBreaker("llm", BreakerConfig(failure_threshold=2))
    provider, _ = make_provider(breaker, llm_max_retries=5)
    fake_llm.default = FakeReply.error_status(500)

    with pytest.raises(CircuitOpenError):
        await provider.complete(MESSAGES)

    assert fake_llm.request_count == 2
