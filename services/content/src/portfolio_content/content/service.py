"""Content operations: public reads, admin reads and the admin writes with history,
optimistic concurrency, idempotency and outbox events.

Every write runs in one database transaction that changes the item, writes
the history entry of the new version, writes the ``ContentChanged`` outbox
row and, when the request carried an idempotency key, stores the reply. So
either all of them commit or none does.

Versions: every change (create, update, soft delete, restore) gives the item a
new version and writes exactly one history entry holding that version's data,
so every listed version, the current one included, can be restored. A hard
delete removes the item and its history.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portfolio_shared.contract import ChangeKind, ContentChanged, HttpReply
from portfolio_shared.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)
from portfolio_shared.ids import new_id
from portfolio_shared.timeutil import format_timestamp, utc_now

from portfolio_content.content import repository
from portfolio_content.content.model import (
    content_etag,
    history_to_wire,
    parse_if_match,
    public_etag,
    row_to_wire,
)
from portfolio_content.content.slugs import candidate_slugs, slugify
from portfolio_content.content.validation import (
    AdminListQuery,
    CreateInput,
    PageQuery,
    UpdateInput,
    json_type_name,
)
from portfolio_content.db.database import UniqueViolationError
from portfolio_content.idempotency.store import IdempotencyClaim, find_reply, save_reply
from portfolio_content.outbox.store import enqueue

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from portfolio_content.db.database import Database, Row, Transaction

__all__ = ["ContentService", "ImportResult", "WriteContext", "WriteOutcome"]

_DERIVED_SLUG_ATTEMPTS = 3
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class WriteContext:
    """Author of a change and the checks it must pass (If-Match, idempotency key)."""

    changed_by: str
    """Recorded in history: ``admin:<key fingerprint>``, ``cli`` or ``seed``."""

    if_match: str | None = None
    idempotency: IdempotencyClaim | None = None


@dataclass
class WriteOutcome:
    """The reply of a write, and what it changed (for the audit line)."""

    reply: HttpReply
    content_id: str | None = None
    version: int | None = None
    events: list[ContentChanged] = field(default_factory=list)


@dataclass
class ImportResult:
    """How many items an import created, changed and left as they were."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _not_found(content_id: str) -> NotFoundError:
    return NotFoundError(f"Content with identifier '{content_id}' not found")


def _slug_taken(content_type: str, slug: str) -> ConflictError:
    return ConflictError(f"Slug '{slug}' already exists for type '{content_type}'")


def _check_if_match(row: Row, if_match: str | None) -> None:
    accepted = parse_if_match(if_match)
    if accepted is not None and row["version"] not in accepted:
        raise PreconditionFailedError(
            f"Content '{row['id']}' is at version {row['version']}, not the version If-Match "
            "names; read it again and reapply the change"
        )


def _event(
    row: Row,
    change: ChangeKind,
    *,
    version: int,
    slug: str,
    status: str,
    at: str,
    previous: Row | None,
) -> ContentChanged:
    return ContentChanged(
        event_id=new_id("evt"),
        content_id=row["id"],
        content_type=row["type"],
        slug=slug,
        version=version,
        change=change,
        status=status,
        occurred_at=at,
        previous_slug=None if previous is None else previous["slug"],
        previous_status=None if previous is None else previous["status"],
    )


def _derivation_base(data: dict[str, Any]) -> str:
    title = data.get("title")
    if title is None or title is False or title == "" or title == 0:
        raise ValidationFailedError(
            "Slug is required when data.title is not provided", fields={"slug": ["Required"]}
        )
    if not isinstance(title, str):
        raise ValidationFailedError(
            "Invalid request body",
            fields={"data.title": [f"Expected string, received {json_type_name(title)}"]},
        )
    base = slugify(title)
    if not base:
        raise ValidationFailedError(
            "Invalid request body",
            fields={
                "data.title": [
                    "Title must contain a letter or digit to derive a slug from; send a slug"
                ]
            },
        )
    return base


class ContentService:
    """The content domain over one database; ``on_commit`` runs after each committed write."""

    def __init__(
        self,
        database: Database,
        *,
        idempotency_ttl_s: int = 86_400,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self._idempotency_ttl_s = idempotency_ttl_s
        self._on_commit = on_commit

    # Public reads

    async def public_list(self, content_type: str | None) -> HttpReply:
        items = [
            row_to_wire(row) for row in await repository.list_published(self.database, content_type)
        ]
        return HttpReply(body={"data": items}, headers={"ETag": public_etag(items)})

    async def public_item(self, content_type: str, slug: str) -> HttpReply:
        row = await repository.get_published(self.database, content_type, slug)
        if row is None:
            raise NotFoundError(f"Content with identifier '{content_type}/{slug}' not found")
        item = row_to_wire(row)
        return HttpReply(body={"data": item}, headers={"ETag": public_etag(item)})

    async def public_bundle(self) -> HttpReply:
        bundle: dict[str, list[dict[str, Any]]] = {}
        for row in await repository.list_published(self.database):
            bundle.setdefault(row["type"], []).append(row_to_wire(row))
        return HttpReply(body={"data": bundle}, headers={"ETag": public_etag(bundle)})

    async def search(self, text: str, content_type: str | None, limit: int) -> list[dict[str, Any]]:
        """Published items ranked by how often and where the words of ``text`` occur.

        A word in ``data.title`` weighs 5, in the slug or type 3, elsewhere in
        the data 1 per occurrence; ties keep the public order.
        """
        terms = sorted(set(_WORD.findall(text.lower())))
        if not terms:
            return []
        rows = await repository.search_candidates(self.database, terms, content_type)
        scored: list[tuple[float, int, dict[str, Any]]] = []
        for position, row in enumerate(rows):
            item = row_to_wire(row)
            title = str(item["data"].get("title", "")).lower()
            names = f"{item['type']} {item['slug']}".lower()
            body = json.dumps(item["data"], ensure_ascii=False).lower()
            score = 0.0
            for term in terms:
                score += 5 * title.count(term) + 3 * names.count(term) + body.count(term)
            if score > 0:
                scored.append((-score, position, {**item, "score": score}))
        scored.sort(key=lambda entry: (entry[0], entry[1]))
        return [entry[2] for entry in scored[:limit]]

    async def types(self) -> list[dict[str, Any]]:
        rows = await repository.published_type_counts(self.database)
        return [{"type": row["type"], "count": row["count"]} for row in rows]

    # Admin reads

    async def admin_list(self, query: AdminListQuery) -> HttpReply:
        rows = await repository.list_admin(
            self.database,
            content_type=query.type,
            status=query.status,
            include_deleted=query.include_deleted,
            limit=query.limit,
            offset=query.offset,
        )
        return HttpReply(body={"data": [row_to_wire(row) for row in rows]})

    async def admin_get(self, content_id: str) -> HttpReply:
        row = await repository.get_by_id(self.database, content_id)
        if row is None:
            raise _not_found(content_id)
        return HttpReply(
            body={"data": row_to_wire(row)}, headers={"ETag": content_etag(row["version"])}
        )

    async def history(self, content_id: str, page: PageQuery) -> HttpReply:
        if await repository.get_by_id(self.database, content_id) is None:
            raise _not_found(content_id)
        rows = await repository.list_history(
            self.database, content_id, limit=page.limit, offset=page.offset
        )
        return HttpReply(body={"data": [history_to_wire(row) for row in rows]})

    async def export_items(self) -> list[dict[str, Any]]:
        """Return every item that is not soft-deleted, of any status, in the public order."""
        return [row_to_wire(row) for row in await repository.list_live(self.database)]

    # Admin writes

    async def create(self, request: CreateInput, context: WriteContext) -> WriteOutcome:
        for attempt in range(1, _DERIVED_SLUG_ATTEMPTS + 1):
            try:
                return await self._write(
                    context,
                    lambda transaction: self._create(transaction, request, context),
                    "create",
                )
            except UniqueViolationError:
                # Another writer took the slug between the check and the insert.
                if request.slug is not None or attempt == _DERIVED_SLUG_ATTEMPTS:
                    raise _slug_taken(request.type, request.slug or "") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def update(
        self, content_id: str, request: UpdateInput, context: WriteContext
    ) -> WriteOutcome:
        try:
            return await self._write(
                context,
                lambda transaction: self._update(transaction, content_id, request, context),
                "update",
            )
        except UniqueViolationError:
            # Another writer took the new slug between the check and the update.
            row = await repository.get_by_id(self.database, content_id)
            content_type = row["type"] if row is not None else "unknown"
            raise _slug_taken(content_type, request.slug or "") from None

    async def delete(self, content_id: str, *, hard: bool, context: WriteContext) -> WriteOutcome:
        return await self._write(
            context,
            lambda transaction: self._delete(transaction, content_id, hard, context),
            "hard delete" if hard else "delete",
        )

    async def restore(self, content_id: str, version: int, context: WriteContext) -> WriteOutcome:
        return await self._write(
            context,
            lambda transaction: self._restore(transaction, content_id, version, context),
            "restore",
        )

    async def import_items(
        self, items: Sequence[CreateInput], *, changed_by: str, only_if_empty: bool = False
    ) -> ImportResult | None:
        """Create or update items by (type, slug) in one transaction: all of them or none.

        An item equal to the stored one (data, status, sort order) is left
        alone, so importing the same folder twice changes nothing. With
        ``only_if_empty`` nothing happens (None) unless the table has no rows.
        """
        context = WriteContext(changed_by=changed_by)

        async def work(transaction: Transaction) -> ImportResult | None:
            if only_if_empty and await repository.count_items(transaction) > 0:
                return None
            result = ImportResult()
            for item in items:
                assert item.slug is not None
                row = await repository.get_by_type_slug(transaction, item.type, item.slug)
                if row is None:
                    outcome = await self._create(transaction, item, context)
                    result.created += 1
                elif row["deleted_at"] is not None:
                    raise ConflictError(
                        f"{item.type}/{item.slug} belongs to the soft-deleted item {row['id']}; "
                        "hard-delete it before importing this slug again"
                    )
                elif (
                    json.loads(row["data"]) == item.data
                    and row["status"] == item.status
                    and row["sort_order"] == item.sort_order
                ):
                    result.unchanged += 1
                    continue
                else:
                    change = UpdateInput(
                        slug=None,
                        data=item.data,
                        status=item.status,
                        sort_order=item.sort_order,
                        version=None,
                    )
                    outcome = await self._update(transaction, row["id"], change, context)
                    result.updated += 1
                for event in outcome.events:
                    await enqueue(transaction, event)
            return result

        result = await self.database.transaction(work, name="content import")
        if result is not None and (result.created or result.updated) and self._on_commit:
            self._on_commit()
        return result

    async def _write(
        self,
        context: WriteContext,
        operation: Callable[[Transaction], Awaitable[WriteOutcome]],
        name: str,
    ) -> WriteOutcome:
        claim = context.idempotency

        async def work(transaction: Transaction) -> WriteOutcome:
            if claim is not None:
                stored = await find_reply(transaction, claim, ttl_s=self._idempotency_ttl_s)
                if stored is not None:
                    return WriteOutcome(reply=stored)
            outcome = await operation(transaction)
            for event in outcome.events:
                await enqueue(transaction, event)
            if claim is not None:
                await save_reply(transaction, claim, outcome.reply)
            return outcome

        outcome = await self.database.transaction(work, name=f"content {name}")
        if outcome.events and self._on_commit is not None:
            self._on_commit()
        return outcome

    async def _create(
        self, transaction: Transaction, request: CreateInput, context: WriteContext
    ) -> WriteOutcome:
        if request.slug is not None:
            slug = request.slug
            if await repository.slug_owner(transaction, request.type, slug) is not None:
                raise _slug_taken(request.type, slug)
        else:
            base = _derivation_base(request.data)
            for candidate in candidate_slugs(base):
                if await repository.slug_owner(transaction, request.type, candidate) is None:
                    slug = candidate
                    break

        now = format_timestamp(utc_now())
        row: Row = {
            "id": new_id("content"),
            "type": request.type,
            "slug": slug,
            "data": json.dumps(request.data, ensure_ascii=False),
            "status": request.status,
            "version": 1,
            "sort_order": request.sort_order,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        await repository.insert_item(transaction, row)
        await repository.insert_history(
            transaction,
            content_id=row["id"],
            version=1,
            data=request.data,
            change_type="created",
            changed_by=context.changed_by,
            summary=f"Created {request.type}: {slug}",
            created_at=now,
        )
        event = _event(
            row,
            ChangeKind.CREATED,
            version=1,
            slug=slug,
            status=request.status,
            at=now,
            previous=None,
        )
        return WriteOutcome(
            reply=HttpReply(
                status=201, body={"data": row_to_wire(row)}, headers={"ETag": content_etag(1)}
            ),
            content_id=row["id"],
            version=1,
            events=[event],
        )

    async def _live_row(self, transaction: Transaction, content_id: str) -> Row:
        row = await repository.get_by_id(transaction, content_id)
        if row is None or row["deleted_at"] is not None:
            raise _not_found(content_id)
        return row

    async def _save_new_version(
        self,
        transaction: Transaction,
        row: Row,
        *,
        values: dict[str, Any],
        data: dict[str, Any],
        change: ChangeKind,
        summary: str,
        context: WriteContext,
        now: str,
    ) -> WriteOutcome:
        version = row["version"] + 1
        values = {**values, "version": version, "updated_at": now}
        if not await repository.update_item(
            transaction, row["id"], expected_version=row["version"], values=values
        ):
            raise ConflictError(
                f"Content '{row['id']}' was changed by another request at the same time; "
                "read it again and reapply the change"
            )
        await repository.insert_history(
            transaction,
            content_id=row["id"],
            version=version,
            data=data,
            change_type=change.value,
            changed_by=context.changed_by,
            summary=summary,
            created_at=now,
        )
        saved = {**row, **values}
        event = _event(
            saved,
            change,
            version=version,
            slug=saved["slug"],
            status=saved["status"],
            at=now,
            previous=row,
        )
        body: Any = (
            {"success": True} if change is ChangeKind.DELETED else {"data": row_to_wire(saved)}
        )
        headers = {} if change is ChangeKind.DELETED else {"ETag": content_etag(version)}
        return WriteOutcome(
            reply=HttpReply(body=body, headers=headers),
            content_id=row["id"],
            version=version,
            events=[event],
        )

    async def _update(
        self,
        transaction: Transaction,
        content_id: str,
        request: UpdateInput,
        context: WriteContext,
    ) -> WriteOutcome:
        row = await self._live_row(transaction, content_id)
        _check_if_match(row, context.if_match)
        if request.version is not None and request.version != row["version"]:
            raise ConflictError(
                f"Content '{content_id}' is at version {row['version']}, but the change was "
                f"based on version {request.version}; read it again and reapply the change"
            )
        if request.slug is not None and request.slug != row["slug"]:
            owner = await repository.slug_owner(transaction, row["type"], request.slug)
            if owner is not None and owner != content_id:
                raise _slug_taken(row["type"], request.slug)

        values: dict[str, Any] = {}
        if request.slug is not None:
            values["slug"] = request.slug
        if request.status is not None:
            values["status"] = request.status
        if request.sort_order is not None:
            values["sort_order"] = request.sort_order
        data = json.loads(row["data"]) if request.data is None else request.data
        values["data"] = json.dumps(data, ensure_ascii=False)
        return await self._save_new_version(
            transaction,
            row,
            values=values,
            data=data,
            change=ChangeKind.UPDATED,
            summary=f"Updated to version {row['version'] + 1}",
            context=context,
            now=format_timestamp(utc_now()),
        )

    async def _delete(
        self, transaction: Transaction, content_id: str, hard: bool, context: WriteContext
    ) -> WriteOutcome:
        now = format_timestamp(utc_now())
        if not hard:
            row = await self._live_row(transaction, content_id)
            _check_if_match(row, context.if_match)
            return await self._save_new_version(
                transaction,
                row,
                values={"deleted_at": now},
                data=json.loads(row["data"]),
                change=ChangeKind.DELETED,
                summary="Soft deleted",
                context=context,
                now=now,
            )

        found = await repository.get_by_id(transaction, content_id)
        if found is None:
            raise _not_found(content_id)
        _check_if_match(found, context.if_match)
        await repository.delete_with_history(transaction, content_id)
        event = _event(
            found,
            ChangeKind.HARD_DELETED,
            version=found["version"],
            slug=found["slug"],
            status=found["status"],
            at=now,
            previous=found,
        )
        return WriteOutcome(
            reply=HttpReply(body={"success": True}),
            content_id=content_id,
            version=found["version"],
            events=[event],
        )

    async def _restore(
        self, transaction: Transaction, content_id: str, version: int, context: WriteContext
    ) -> WriteOutcome:
        row = await self._live_row(transaction, content_id)
        _check_if_match(row, context.if_match)
        entry = await repository.get_history_version(transaction, content_id, version)
        if entry is None:
            raise NotFoundError(f"Version with identifier '{content_id}@{version}' not found")
        data = json.loads(entry["data"])
        return await self._save_new_version(
            transaction,
            row,
            values={"data": entry["data"]},
            data=data,
            change=ChangeKind.RESTORED,
            summary=f"Restored from version {version} to version {row['version'] + 1}",
            context=context,
            now=format_timestamp(utc_now()),
        )
