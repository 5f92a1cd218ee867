"""NATS endpoints of the content service: each turns a ``ServiceRequest`` into a call
on ``ContentService`` and returns the reply's ``data``.

Gateway-facing endpoints (public reads, every admin endpoint) return an
``HttpReply`` (status, body, headers, replay flag). The chat tools' endpoints
(search, types) return plain data. Admin writes log one ``admin action``
line with the action, content id, version, key fingerprint, request id and
client hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from portfolio_shared.logging import get_logger

from portfolio_content.content.service import WriteContext, WriteOutcome
from portfolio_content.content.validation import (
    parse_boolean,
    validate_admin_list_query,
    validate_content_id,
    validate_create,
    validate_item_params,
    validate_page_query,
    validate_public_list_query,
    validate_restore,
    validate_search_query,
    validate_update,
)
from portfolio_content.idempotency.store import IdempotencyClaim, request_fingerprint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from portfolio_shared.contract import ServiceRequest, Subjects

    from portfolio_content.content.service import ContentService

__all__ = ["ContentEndpoints"]

audit = get_logger("content.audit")


def _changed_by(request: ServiceRequest) -> str:
    if request.actor is not None:
        return f"admin:{request.actor.key_fingerprint}"
    return "admin"


def _context(request: ServiceRequest, scope: str, *parts: Any) -> WriteContext:
    claim = None
    if request.idempotency_key is not None:
        claim = IdempotencyClaim(
            scope=scope,
            key=request.idempotency_key,
            fingerprint=request_fingerprint(*parts),
        )
    return WriteContext(
        changed_by=_changed_by(request), if_match=request.if_match, idempotency=claim
    )


class ContentEndpoints:
    """The handlers, bound to one ``ContentService``."""

    def __init__(self, service: ContentService, *, audit_log: bool = True) -> None:
        self._service = service
        self._audit_log = audit_log

    def routes(
        self, subjects: Subjects
    ) -> list[tuple[str, str, Callable[[ServiceRequest], Awaitable[Any]]]]:
        """``(endpoint name, subject, handler)`` for every content subject."""
        return [
            ("public-list", subjects.content_public_list, self.public_list),
            ("public-item", subjects.content_public_item, self.public_item),
            ("public-bundle", subjects.content_public_bundle, self.public_bundle),
            ("admin-list", subjects.content_admin_list, self.admin_list),
            ("admin-get", subjects.content_admin_get, self.admin_get),
            ("admin-create", subjects.content_admin_create, self.admin_create),
            ("admin-update", subjects.content_admin_update, self.admin_update),
            ("admin-delete", subjects.content_admin_delete, self.admin_delete),
            ("admin-history", subjects.content_admin_history, self.admin_history),
            ("admin-restore", subjects.content_admin_restore, self.admin_restore),
            ("search", subjects.content_search, self.search),
            ("types", subjects.content_types, self.types),
        ]

    # Public

    async def public_list(self, request: ServiceRequest) -> Any:
        content_type = validate_public_list_query(request.query)
        return (await self._service.public_list(content_type)).to_data()

    async def public_item(self, request: ServiceRequest) -> Any:
        content_type, slug = validate_item_params(request.params)
        return (await self._service.public_item(content_type, slug)).to_data()

    async def public_bundle(self, request: ServiceRequest) -> Any:
        return (await self._service.public_bundle()).to_data()

    # Chat tools

    async def search(self, request: ServiceRequest) -> Any:
        """``q`` (words to find), optional ``type`` and ``limit``: ranked published items,
        each with a ``score``."""
        text, content_type, limit = validate_search_query(request.query)
        return await self._service.search(text, content_type, limit)

    async def types(self, request: ServiceRequest) -> Any:
        """``[{"type": "project", "count": 3}, ...]`` over published items."""
        return await self._service.types()

    # Admin reads

    async def admin_list(self, request: ServiceRequest) -> Any:
        query = validate_admin_list_query(request.query)
        return (await self._service.admin_list(query)).to_data()

    async def admin_get(self, request: ServiceRequest) -> Any:
        content_id = validate_content_id(request.params)
        return (await self._service.admin_get(content_id)).to_data()

    async def admin_history(self, request: ServiceRequest) -> Any:
        content_id = validate_content_id(request.params)
        page = validate_page_query(request.query)
        return (await self._service.history(content_id, page)).to_data()

    # Admin writes

    async def admin_create(self, request: ServiceRequest) -> Any:
        context = _context(request, "create", request.body)
        body = validate_create(request.body)
        outcome = await self._service.create(body, context)
        return self._finish("create", request, outcome)

    async def admin_update(self, request: ServiceRequest) -> Any:
        content_id = validate_content_id(request.params)
        context = _context(request, f"update:{content_id}", request.body, request.if_match)
        body = validate_update(request.body)
        outcome = await self._service.update(content_id, body, context)
        return self._finish("update", request, outcome)

    async def admin_delete(self, request: ServiceRequest) -> Any:
        content_id = validate_content_id(request.params)
        hard = parse_boolean("hard", request.query.get("hard"), default=False)
        context = _context(request, f"delete:{content_id}", hard, request.if_match)
        outcome = await self._service.delete(content_id, hard=hard, context=context)
        return self._finish("hard delete" if hard else "delete", request, outcome)

    async def admin_restore(self, request: ServiceRequest) -> Any:
        content_id = validate_content_id(request.params)
        context = _context(request, f"restore:{content_id}", request.body, request.if_match)
        version = validate_restore(request.body)
        outcome = await self._service.restore(content_id, version, context)
        return self._finish("restore", request, outcome)

    def _finish(self, action: str, request: ServiceRequest, outcome: WriteOutcome) -> Any:
        if self._audit_log:
            audit.info(
                "admin action",
                action=action,
                content_id=outcome.content_id or request.params.get("id"),
                version=outcome.version,
                replayed=outcome.reply.replayed,
                key_fingerprint=request.actor.key_fingerprint if request.actor else None,
                client_hash=request.actor.client_hash if request.actor else request.client_hash,
                request_id=request.request_id,
            )
        return outcome.reply.to_data()
