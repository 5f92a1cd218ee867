"""The tools the model may call to read the portfolio, and their execution.

Each tool call becomes a request to the content service (published content only).
A tool's result is JSON text ``{"success": true, "data": ...}`` or
``{"success": false, "error": "..."}``; items lose the bookkeeping keys
(``id``, ``version``, ``sortOrder``, ``createdAt``, ``updatedAt``) that only
cost prompt tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portfolio_shared.errors import PortfolioError
from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from portfolio_chat.grounding.content_client import ContentClient

__all__ = ["TOOL_DEFINITIONS", "ToolResult", "ToolRunner"]

log = get_logger("chat.tools")

HIDDEN_ITEM_KEYS = frozenset({"id", "version", "sortOrder", "createdAt", "updatedAt"})
"""Item keys left out of tool results."""

SEARCH_LIMIT_MAX = 10

TOOL_DEFINITIONS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "list_content",
            "description": "List published portfolio items, optionally of one type "
            "(for example project, experience, skill).",
            "parameters": {
                "type": "object",
                "properties": {"type": {"type": "string", "description": "Content type to list."}},
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_content",
            "description": "Get one published portfolio item by its type and slug.",
            "parameters": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "slug": {"type": "string"},
                },
                "required": ["type", "slug"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_content",
            "description": "Full-text search over published portfolio items.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words to search for."},
                    "type": {"type": "string", "description": "Only items of this type."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX},
                },
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_types",
            "description": "List the content types that have published items, with counts.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]
"""Tool schemas in the chat completions ``tools`` format."""


@dataclass(frozen=True)
class ToolResult:
    """One executed tool call, as ``toolCalls`` in the reply lists it."""

    id: str
    name: str
    arguments: dict[str, Any]
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "result": self.result,
        }


class ToolRunner:
    """Executes tool calls against the content service."""

    def __init__(self, content: ContentClient) -> None:
        self.content = content

    async def run(self, call_id: str, name: str, raw_arguments: str) -> ToolResult:
        arguments = _parse_arguments(raw_arguments)
        try:
            data = await self._dispatch(name, arguments)
            payload: dict[str, Any] = {"success": True, "data": _strip(data)}
        except _ToolArgumentError as error:
            payload = {"success": False, "error": str(error)}
        except PortfolioError as error:
            log.warning("tool call failed", tool=name, call_id=call_id, error=error.message)
            payload = {"success": False, "error": error.message}
        return ToolResult(call_id, name, arguments, json.dumps(payload, ensure_ascii=False))

    async def _dispatch(self, name: str, arguments: dict[str, Any]) -> Any:
        if name == "list_content":
            return await self.content.list_items(_optional_text(arguments, "type"))
        if name == "get_content":
            return await self.content.get_item(
                _required_text(arguments, "type"), _required_text(arguments, "slug")
            )
        if name == "search_content":
            limit = arguments.get("limit", 5)
            if not isinstance(limit, int) or isinstance(limit, bool):
                limit = 5
            return await self.content.search(
                _required_text(arguments, "query"),
                content_type=_optional_text(arguments, "type"),
                limit=max(1, min(limit, SEARCH_LIMIT_MAX)),
            )
        if name == "list_types":
            return await self.content.types()
        raise _ToolArgumentError(f"Unknown tool '{name}'")


class _ToolArgumentError(Exception):
    """The model called a tool with unusable arguments; the message goes back to it."""


def _parse_arguments(raw: str) -> dict[str, Any]:
    """Return the call's arguments; ``{}`` when they are not a JSON object."""
    try:
        parsed = json.loads(raw or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _required_text(arguments: dict[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _ToolArgumentError(f"Argument '{name}' is required and must be a string")
    return value.strip()


def _optional_text(arguments: dict[str, Any], name: str) -> str | None:
    value = arguments.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _strip(data: Any) -> Any:
    """Remove bookkeeping keys from an item or from each item of a list."""
    if isinstance(data, list):
        return [_strip(entry) for entry in data]
    if isinstance(data, dict) and "data" in data and ("slug" in data or "type" in data):
        return {key: value for key, value in data.items() if key not in HIDDEN_ITEM_KEYS}
    return data
