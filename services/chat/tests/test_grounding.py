"""The system prompt follows content edits through ``ContentChanged`` events."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from portfolio_chat.grounding.content_client import ContentClient
from portfolio_chat.grounding.prompt import UNLOADED_NOTE, GroundingCache
from portfolio_shared.contract import ChangeKind, ContentChanged, Subjects
from portfolio_shared.contract.events import encode_event
from portfolio_shared.ids import new_id
from portfolio_shared.nats_client import connect_nats
from portfolio_shared.timeutil import format_timestamp, utc_now

if TYPE_CHECKING:
    from portfolio_chat.testing import ChatHarness
    from portfolio_shared.testing.fake_llm import FakeLlm
    from portfolio_shared.testing.servers import ManagedServer


async def publish_change(chat: ChatHarness, content_id: str) -> None:
    event = ContentChanged(
        event_id=new_id("evt"),
        content_id=content_id,
        content_type="project",
        slug="rusty-compiler",
        version=2,
        change=ChangeKind.UPDATED,
        status="published",
        occurred_at=format_timestamp(utc_now()),
    )
    await chat.client.jetstream().publish(chat.subjects.content_changed, encode_event(event))


async def test_content_event_refreshes_the_system_prompt(
    chat: ChatHarness, fake_llm: FakeLlm
) -> None:
    await chat.send({"message": "Before", "visitorId": "v1"})
    chat.content.bundle["project"][0]["data"]["title"] = "Oxidised Compiler"

    await publish_change(chat, "content_p1")

    deadline = asyncio.get_running_loop().time() + 10
    while True:
        await chat.send({"message": "After", "visitorId": "v1"})
        system = fake_llm.requests[-1]["messages"][0]["content"]
        if "Oxidised Compiler" in system or asyncio.get_running_loop().time() > deadline:
            break
    assert "Oxidised Compiler" in system


async def test_prompt_is_cached_between_events(chat: ChatHarness, fake_llm: FakeLlm) -> None:
    await chat.send({"message": "One", "visitorId": "v1"})
    chat.content.bundle["project"][0]["data"]["title"] = "Unannounced Title"

    await chat.send({"message": "Two", "visitorId": "v1"})

    assert "Unannounced Title" not in fake_llm.requests[-1]["messages"][0]["content"]


async def test_unreachable_content_leaves_a_note_in_the_prompt(
    nats_server: ManagedServer, namespace: str
) -> None:
    client = await connect_nats(nats_server.url, name="grounding-test")
    try:
        content = ContentClient(lambda: client, Subjects(namespace), timeout_s=0.2)
        grounding = await GroundingCache(content, max_chars=1000).current()
    finally:
        await client.close()

    assert grounding.loaded is False
    assert grounding.prompt.endswith(UNLOADED_NOTE)
