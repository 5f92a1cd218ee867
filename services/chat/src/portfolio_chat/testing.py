"""Test support: a stand-in content service serving a fixed portfolio, and a
harness holding a running chat service and a NATS client to talk to it.

Used by the chat service's own tests and by the gateway's chat route tests, where the
real content service is not needed."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portfolio_shared.contract import ServiceRequest, Subjects
from portfolio_shared.errors import NotFoundError, ServiceUnavailableError
from portfolio_shared.nats_client import NatsClient, request
from portfolio_shared.runtime import ServiceRuntime
from portfolio_shared.settings import CommonSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from portfolio_chat.service import ChatService

__all__ = [
    "OWNER_EMAIL",
    "ChatHarness",
    "ContentStandIn",
    "running_content_stand_in",
    "sample_portfolio",
]

OWNER_EMAIL = "ada@example.com"
"""The public contact address of the sample portfolio, which redaction keeps."""


def sample_portfolio() -> dict[str, list[dict[str, Any]]]:
    """Published content of the stand-in content service, as its bundle."""
    return {
        "about": [
            {
                "id": "content_about",
                "type": "about",
                "slug": "ada",
                "data": {"name": "Ada Example", "bio": "Engineer who builds compilers in Rust."},
                "version": 1,
            }
        ],
        "project": [
            {
                "id": "content_p1",
                "type": "project",
                "slug": "rusty-compiler",
                "data": {"title": "Rusty Compiler", "summary": "A toy compiler written in Rust."},
                "version": 1,
            },
            {
                "id": "content_p2",
                "type": "project",
                "slug": "garden-planner",
                "data": {"title": "Garden Planner", "summary": "A Python app to plan gardens."},
                "version": 1,
            },
        ],
        "contact": [
            {
                "id": "content_c1",
                "type": "contact",
                "slug": "contact",
                "data": {"email": OWNER_EMAIL},
                "version": 1,
            }
        ],
    }


@dataclass
class ContentStandIn:
    """A content service serving the public and search subjects from ``bundle``."""

    bundle: dict[str, list[dict[str, Any]]] = field(default_factory=sample_portfolio)
    searches: list[dict[str, str]] = field(default_factory=list)
    search_fails: bool = False
    """When set, search requests fail as if the search endpoint were unavailable."""

    def items(self) -> list[dict[str, Any]]:
        return [item for items in self.bundle.values() for item in items]

    async def public_bundle(self, _: ServiceRequest) -> Any:
        return copy.deepcopy(self.bundle)

    async def public_list(self, request: ServiceRequest) -> Any:
        wanted = request.query.get("type")
        return [item for item in self.items() if wanted in (None, item["type"])]

    async def public_item(self, request: ServiceRequest) -> Any:
        for item in self.items():
            if (item["type"], item["slug"]) == (request.params["type"], request.params["slug"]):
                return item
        raise NotFoundError(
            f"Content with identifier '{request.params['type']}/{request.params['slug']}' not found"
        )

    async def search(self, request: ServiceRequest) -> Any:
        self.searches.append(dict(request.query))
        if self.search_fails:
            raise ServiceUnavailableError("The content service is unavailable")
        words = request.query.get("q", "").lower().split()
        return [
            item
            for item in self.items()
            if any(word in str(item["data"]).lower() for word in words)
        ]

    async def types(self, _: ServiceRequest) -> Any:
        return [{"type": key, "count": len(value)} for key, value in self.bundle.items()]


@dataclass
class ChatHarness:
    """A running chat service plus a NATS client and the content stand-in."""

    service: ChatService
    client: NatsClient
    content: ContentStandIn
    subjects: Subjects

    async def ask(self, subject: str, message: ServiceRequest) -> Any:
        return await request(self.client, subject, message, timeout_s=10, service="chat")

    async def send(
        self, body: dict[str, Any], *, query: dict[str, str] | None = None, **fields: Any
    ) -> Any:
        return await self.ask(
            self.subjects.chat_send, ServiceRequest(body=body, query=query or {}, **fields)
        )


@contextlib.asynccontextmanager
async def running_content_stand_in(
    nats_url: str, namespace: str, stand_in: ContentStandIn | None = None
) -> AsyncIterator[ContentStandIn]:
    """Serve the public, search and types content subjects of ``namespace`` from ``stand_in``."""
    stand_in = stand_in or ContentStandIn()
    subjects = Subjects(namespace)
    runtime = ServiceRuntime("content", CommonSettings(nats_url=nats_url, nats_namespace=namespace))
    runtime.add_endpoint("bundle", subjects.content_public_bundle, stand_in.public_bundle)
    runtime.add_endpoint("list", subjects.content_public_list, stand_in.public_list)
    runtime.add_endpoint("item", subjects.content_public_item, stand_in.public_item)
    runtime.add_endpoint("search", subjects.content_search, stand_in.search)
    runtime.add_endpoint("types", subjects.content_types, stand_in.types)
    async with runtime:
        yield stand_in
