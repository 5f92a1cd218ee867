"""Reads of published portfolio content from the content service, over NATS.

The chat service never touches the content database: tools, the system prompt
and offline answers all ask the content service's public and search endpoints.
Replies are unwrapped here, once: the public endpoints reply with an
``HttpReply`` meant for the gateway (status, headers, ``{"data": ...}`` body),
and a list under an ``items`` or ``results`` key reads the same as a bare list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from portfolio_shared.contract import ServiceRequest
from portfolio_shared.contract.replies import HttpReply
from portfolio_shared.nats_client import request

if TYPE_CHECKING:
    from collections.abc import Callable

    from portfolio_shared.contract import Subjects
    from portfolio_shared.nats_client import NatsClient

__all__ = ["ContentClient"]


class ContentClient:
    """Published content, as the content service serves it."""

    def __init__(
        self, connection: Callable[[], NatsClient], subjects: Subjects, *, timeout_s: float
    ) -> None:
        self.connection = connection
        """Returns the NATS client to use; called per request, so the client may be
        created after this object."""

        self.subjects = subjects
        self.timeout_s = timeout_s

    async def list_items(self, content_type: str | None = None) -> list[dict[str, Any]]:
        query = {"type": content_type} if content_type else {}
        data = await self._ask(self.subjects.content_public_list, ServiceRequest(query=query))
        return _items(data)

    async def get_item(self, content_type: str, slug: str) -> dict[str, Any]:
        data = await self._ask(
            self.subjects.content_public_item,
            ServiceRequest(params={"type": content_type, "slug": slug}),
        )
        if isinstance(data, dict) and isinstance(data.get("item"), dict):
            return dict(data["item"])
        return dict(data) if isinstance(data, dict) else {}

    async def bundle(self) -> dict[str, list[dict[str, Any]]]:
        data = await self._ask(self.subjects.content_public_bundle, ServiceRequest())
        if isinstance(data, dict) and isinstance(data.get("bundle"), dict):
            data = data["bundle"]
        if not isinstance(data, dict):
            return {}
        return {str(key): _items(value) for key, value in data.items() if isinstance(value, list)}

    async def search(
        self, text: str, *, content_type: str | None = None, limit: int = 5
    ) -> list[dict[str, Any]]:
        query = {"q": text, "limit": str(limit)}
        if content_type:
            query["type"] = content_type
        data = await self._ask(self.subjects.content_search, ServiceRequest(query=query))
        return _items(data)

    async def types(self) -> Any:
        return await self._ask(self.subjects.content_types, ServiceRequest())

    async def _ask(self, subject: str, message: ServiceRequest) -> Any:
        data = await request(
            self.connection(), subject, message, timeout_s=self.timeout_s, service="content"
        )
        return HttpReply.unwrap(data)


def _items(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        for key in ("items", "results", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        return []
    items: list[dict[str, Any]] = []
    for entry in data:
        if isinstance(entry, dict):
            # A search hit may wrap its item next to a score.
            items.append(entry["item"] if isinstance(entry.get("item"), dict) else entry)
    return items
