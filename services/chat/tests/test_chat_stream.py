"""The stream endpoint over real NATS: ack, tokens before the provider finishes, final
message, cancellation stopping the provider call."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest
from portfolio_shared.contract import ServiceRequest
from portfolio_shared.contract.streaming import (
    ChatStreamCancel,
    ChatStreamDone,
    ChatStreamError,
    ChatToken,
    decode_stream_message,
)
from portfolio_shared.errors import LlmError, ValidationFailedError
from portfolio_shared.testing.fake_llm import FakeReply, FakeToolCall

if TYPE_CHECKING:
    from nats.aio.subscription import Subscription
    from portfolio_chat.testing import ChatHarness
    from portfolio_shared.contract.streaming import ChatStreamMessage
    from portfolio_shared.testing.fake_llm import FakeLlm


async def open_stream(
    chat: ChatHarness, body: dict[str, object]
) -> tuple[str, Subscription, dict[str, str]]:
    inbox = chat.client.new_inbox()
    subscription = await chat.client.subscribe(inbox)
    ack = await chat.ask(chat.subjects.chat_stream, ServiceRequest(body=body, stream_to=inbox))
    return inbox, subscription, ack


async def next_message(subscription: Subscription) -> ChatStreamMessage:
    msg = await subscription.next_msg(timeout=10)
    return decode_stream_message(msg.data)


async def test_first_token_arrives_before_the_provider_finishes(
    chat: ChatHarness, fake_llm: FakeLlm
) -> None:
    gate = threading.Event()
    fake_llm.script(FakeReply.reply_text("Hello there friend", gate=gate))
    _, subscription, ack = await open_stream(chat, {"message": "Hi", "visitorId": "v1"})

    first = await next_message(subscription)
    finished_before_first_token = fake_llm.completed
    gate.set()
    rest = [await next_message(subscription) for _ in range(3)]

    assert ack["sessionId"].startswith("sess_")
    assert first == ChatToken(seq=0, text="Hello ")
    assert finished_before_first_token == 0
    assert [type(message) for message in rest] == [ChatToken, ChatToken, ChatStreamDone]


async def test_done_message_carries_the_reply(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(FakeReply.reply_text("Short answer"))
    _, subscription, _ = await open_stream(chat, {"message": "Hi", "visitorId": "v1"})

    messages = [await next_message(subscription) for _ in range(3)]

    done = messages[-1]
    assert isinstance(done, ChatStreamDone)
    assert done.seq == 2
    assert done.reply["message"]["content"] == "Short answer"


async def test_provider_failure_ends_with_an_error_message(
    chat: ChatHarness, fake_llm: FakeLlm
) -> None:
    fake_llm.script(FakeReply.error_status(500, "down"))
    _, subscription, _ = await open_stream(chat, {"message": "Hi", "visitorId": "v1"})

    message = await next_message(subscription)

    assert isinstance(message, ChatStreamError)
    assert message.error == {"code": "LLM_ERROR", "message": "down"}


async def test_invalid_stream_request_fails_before_the_ack(chat: ChatHarness) -> None:
    with pytest.raises(ValidationFailedError):
        await open_stream(chat, {"message": "", "visitorId": "v1"})


async def test_open_circuit_fails_before_the_ack(start_chat, fake_llm: FakeLlm) -> None:  # type: ignore[no-untyped-def]
    harness = await start_chat(
        llm_base_url=fake_llm.base_url, llm_max_retries=0, circuit_breaker_failure_threshold=1
    )
    fake_llm.script(FakeReply.error_status(500))
    with pytest.raises(LlmError):
        await harness.send({"message": "Hi", "visitorId": "v1"})

    with pytest.raises(LlmError, match="Circuit breaker is open") as caught:
        await open_stream(harness, {"message": "Hi", "visitorId": "v1"})

    assert caught.value.retry_after is not None


async def test_cancel_stops_the_provider_call(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    gate = threading.Event()
    fake_llm.script(FakeReply.reply_text("This will never finish", gate=gate))
    inbox, subscription, _ = await open_stream(chat, {"message": "Hi", "visitorId": "v1"})
    await next_message(subscription)

    await chat.client.publish(
        chat.subjects.chat_stream_cancel, ChatStreamCancel(stream_to=inbox).encode()
    )

    await asyncio.to_thread(fake_llm.wait_for_disconnects, 1)
    assert fake_llm.completed == 0


async def test_blank_message_streams_the_fixed_reply(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    _, subscription, _ = await open_stream(chat, {"message": "   ", "visitorId": "v1"})

    token = await next_message(subscription)
    done = await next_message(subscription)

    assert isinstance(token, ChatToken)
    assert isinstance(done, ChatStreamDone)
    assert token.text == done.reply["message"]["content"]
    assert fake_llm.request_count == 0


async def test_streamed_turn_runs_tool_rounds(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(
        FakeReply.call_tools(FakeToolCall("list_types")),
        FakeReply.reply_text("Three types"),
    )
    inbox = chat.client.new_inbox()
    subscription = await chat.client.subscribe(inbox)
    await chat.ask(
        chat.subjects.chat_stream,
        ServiceRequest(
            body={"message": "Types?", "visitorId": "v1"},
            query={"includeToolCalls": "true"},
            stream_to=inbox,
        ),
    )

    messages = [await next_message(subscription) for _ in range(3)]

    done = messages[-1]
    assert isinstance(done, ChatStreamDone)
    assert [call["name"] for call in done.reply["toolCalls"]] == ["list_types"]
    assert done.reply["message"]["content"] == "Three types"
