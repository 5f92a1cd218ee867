"""Chat turns over real NATS: replies, sessions, tools, redaction and provider failures."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from portfolio_chat.conversation.turns import BLANK_MESSAGE_REPLY
from portfolio_chat.testing import OWNER_EMAIL
from portfolio_shared.contract import ServiceRequest
from portfolio_shared.errors import BadRequestError, LlmError, NotFoundError, ValidationFailedError
from portfolio_shared.testing.fake_llm import FakeReply, FakeToolCall

if TYPE_CHECKING:
    from portfolio_chat.testing import ChatHarness
    from portfolio_shared.testing.fake_llm import FakeLlm


async def test_reply_carries_session_message_and_tokens(
    chat: ChatHarness, fake_llm: FakeLlm
) -> None:
    fake_llm.script(FakeReply.reply_text("She built a compiler.", total_tokens=42))

    reply = await chat.send({"message": "What did she build?", "visitorId": "v1"})

    assert reply["sessionId"].startswith("sess_")
    assert reply["message"]["role"] == "assistant"
    assert reply["message"]["content"] == "She built a compiler."
    assert reply["message"]["id"].startswith("msg_")
    assert reply["tokensUsed"] == 42
    assert "toolCalls" not in reply


async def test_system_prompt_embeds_published_content(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    await chat.send({"message": "Hi there", "visitorId": "v1"})

    system = fake_llm.requests[0]["messages"][0]
    assert system["role"] == "system"
    assert "Rusty Compiler" in system["content"]


async def test_session_is_reused_with_its_history(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    first = await chat.send({"message": "First question", "visitorId": "v1"})
    second = await chat.send({"message": "Second question", "visitorId": "v1"})

    assert second["sessionId"] == first["sessionId"]
    sent = [message["content"] for message in fake_llm.requests[1]["messages"][1:]]
    assert sent == ["First question", "Hello from the fake model.", "Second question"]


async def test_visitor_id_header_is_accepted(chat: ChatHarness) -> None:
    reply = await chat.send({"message": "Hello"}, visitor_id="from-header")

    assert reply["sessionId"].startswith("sess_")


async def test_unknown_session_id_is_not_found(chat: ChatHarness) -> None:
    with pytest.raises(NotFoundError, match="Session with identifier"):
        await chat.send({"message": "Hello", "visitorId": "v1", "sessionId": "sess_" + "a" * 21})


async def test_session_of_another_visitor_is_not_found(chat: ChatHarness) -> None:
    reply = await chat.send({"message": "Hello", "visitorId": "owner"})

    with pytest.raises(NotFoundError):
        await chat.send({"message": "Hello", "visitorId": "other", "sessionId": reply["sessionId"]})


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"visitorId": "v"}, "message", "Required"),
        ({"message": "", "visitorId": "v"}, "message", "Message is required"),
        (
            {"message": "x" * 2001, "visitorId": "v"},
            "message",
            "Message must be 2000 characters or less",
        ),
        ({"message": 5, "visitorId": "v"}, "message", "Expected string, received number"),
        ({"message": "hi"}, "visitorId", "Required"),
        ({"message": "hi", "visitorId": ""}, "visitorId", "Visitor ID is required"),
        (
            {"message": "hi", "visitorId": "v" * 101},
            "visitorId",
            "Visitor ID must be 100 characters or less",
        ),
        (
            {"message": "hi", "visitorId": "v", "sessionId": "nope"},
            "sessionId",
            "Invalid session ID format",
        ),
    ],
)
async def test_invalid_body_names_the_field(
    chat: ChatHarness, body: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        await chat.send(body)

    assert caught.value.message == "Invalid request body"
    assert caught.value.fields[field] == [message]


async def test_array_body_is_rejected_at_the_root(chat: ChatHarness) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        await chat.ask(chat.subjects.chat_send, ServiceRequest(body=[1]))

    assert caught.value.fields == {"_root": ["Expected object, received array"]}


async def test_bad_include_tool_calls_flag_is_rejected(chat: ChatHarness) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid query parameters"):
        await chat.send({"message": "hi", "visitorId": "v"}, query={"includeToolCalls": "yes"})


async def test_blank_message_gets_fixed_reply_without_provider(
    chat: ChatHarness, fake_llm: FakeLlm
) -> None:
    reply = await chat.send({"message": " \t\x00\x07 ", "visitorId": "v1"})

    assert reply["message"]["content"] == BLANK_MESSAGE_REPLY
    assert reply["tokensUsed"] == 0
    assert fake_llm.request_count == 0


async def test_control_characters_are_stripped_before_the_provider(
    chat: ChatHarness, fake_llm: FakeLlm
) -> None:
    await chat.send({"message": "Hel\x00lo\x1b there", "visitorId": "v1"})

    assert fake_llm.requests[0]["messages"][-1]["content"] == "Hello there"


async def test_tool_calls_are_answered_from_content(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(
        FakeReply.call_tools(
            FakeToolCall("get_content", {"type": "project", "slug": "rusty-compiler"})
        ),
        FakeReply.reply_text("It is a toy compiler."),
    )

    reply = await chat.send(
        {"message": "Tell me about the compiler", "visitorId": "v1"},
        query={"includeToolCalls": "true"},
    )

    call = reply["toolCalls"][0]
    assert call["name"] == "get_content"
    assert call["arguments"] == {"type": "project", "slug": "rusty-compiler"}
    result = json.loads(call["result"])
    assert result["success"] is True
    assert result["data"]["data"]["title"] == "Rusty Compiler"
    assert "id" not in result["data"]
    assert fake_llm.requests[1]["messages"][-1]["role"] == "tool"
    assert reply["tokensUsed"] == 20 + 30


async def test_tool_error_is_reported_to_the_model(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(
        FakeReply.call_tools(FakeToolCall("get_content", {"type": "project", "slug": "missing"})),
        FakeReply.reply_text("Not found."),
    )

    reply = await chat.send(
        {"message": "missing?", "visitorId": "v1"}, query={"includeToolCalls": "1"}
    )

    result = json.loads(reply["toolCalls"][0]["result"])
    assert result == {
        "success": False,
        "error": "Content with identifier 'project/missing' not found",
    }


async def test_unparsable_tool_arguments_become_empty(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(
        FakeReply.call_tools(FakeToolCall("list_types", "{not json")),
        FakeReply.reply_text("Types listed."),
    )

    reply = await chat.send(
        {"message": "types?", "visitorId": "v1"}, query={"includeToolCalls": "true"}
    )

    assert reply["toolCalls"][0]["arguments"] == {}


async def test_tool_rounds_are_capped(start_chat, fake_llm: FakeLlm) -> None:  # type: ignore[no-untyped-def]
    harness = await start_chat(
        llm_base_url=fake_llm.base_url, llm_max_retries=0, chat_max_tool_rounds=2
    )
    fake_llm.script(
        FakeReply.call_tools(FakeToolCall("list_types")),
        FakeReply.call_tools(FakeToolCall("list_types")),
        FakeReply.reply_text("Done."),
    )

    reply = await harness.send(
        {"message": "loop", "visitorId": "v1"}, query={"includeToolCalls": "true"}
    )

    assert len(reply["toolCalls"]) == 2
    assert "tools" not in fake_llm.requests[2]


async def test_output_is_redacted_except_owner_email(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(
        FakeReply.reply_text(
            f"Write to {OWNER_EMAIL} or bob@corp.example, call +1 (555) 123-4567, id 123-45-6789."
        )
    )

    reply = await chat.send({"message": "contact?", "visitorId": "v1"})

    assert reply["message"]["content"] == (
        f"Write to {OWNER_EMAIL} or [REDACTED EMAIL], call [REDACTED PHONE], id [REDACTED SSN]."
    )


async def test_provider_failure_is_llm_error(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(FakeReply.error_status(500, "upstream exploded"))

    with pytest.raises(LlmError, match="upstream exploded"):
        await chat.send({"message": "hi", "visitorId": "v1"})


async def test_provider_rejection_is_bad_request(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(FakeReply.error_status(400, "prompt too long"))

    with pytest.raises(BadRequestError, match="prompt too long"):
        await chat.send({"message": "hi", "visitorId": "v1"})


async def test_failed_turn_keeps_the_user_message(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(FakeReply.error_status(503))
    with pytest.raises(LlmError):
        await chat.send({"message": "kept?", "visitorId": "v1"})

    sessions = await chat.ask(chat.subjects.chat_admin_sessions_list, ServiceRequest())
    detail = await chat.ask(
        chat.subjects.chat_admin_sessions_get, ServiceRequest(params={"id": sessions[0]["id"]})
    )
    assert [message["content"] for message in detail["messages"]] == ["kept?"]


async def test_offline_mode_answers_from_content_search(start_chat) -> None:  # type: ignore[no-untyped-def]
    harness = await start_chat()

    reply = await harness.send({"message": "What has she built with Rust?", "visitorId": "v1"})

    assert reply["message"]["content"].startswith("[Offline mode")
    assert "Rusty Compiler" in reply["message"]["content"]
    assert reply["offline"] is True


async def test_provider_refusing_the_key_is_llm_error(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    fake_llm.script(FakeReply.error_status(401, "invalid api key"))

    with pytest.raises(LlmError, match="invalid api key"):
        await chat.send({"message": "hi", "visitorId": "v1"})


async def test_offline_mode_scores_locally_without_content_search(start_chat) -> None:  # type: ignore[no-untyped-def]
    harness = await start_chat()
    await harness.send({"message": "warm up", "visitorId": "v1"})
    harness.content.search_fails = True

    reply = await harness.send({"message": "Garden planning in Python?", "visitorId": "v1"})

    assert "Garden Planner" in reply["message"]["content"]
