"""Reading and writing content items as Markdown files with YAML front matter.

One file per item, ``<type>/<slug>.md``::

    ---
    type: project          # optional: defaults to the parent folder's name
    slug: harbour-tides    # optional: defaults to the file name
    status: published      # optional: draft
    sortOrder: 1           # optional: 0
    title: Harbour Tides   # every other key goes into the item's data
    ---
    Markdown text, stored as data.body.

When the data itself has a key named like one of the four above (or ``data``),
the front matter contains the data under ``data:`` instead, so nothing collides.
A problem is reported with the file name and the line it is on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from portfolio_shared.errors import ValidationFailedError

from portfolio_content.content.validation import CreateInput, validate_create

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "RESERVED_KEYS",
    "MarkdownItem",
    "MarkdownProblem",
    "ReadFailedError",
    "read_folder",
    "render_item",
    "write_folder",
]

RESERVED_KEYS = ("type", "slug", "status", "sortOrder")
"""Front matter keys that describe the item rather than its data."""

_DELIMITER = "---"


@dataclass(frozen=True)
class MarkdownItem:
    """One valid item read from a file."""

    path: Path
    item: CreateInput


@dataclass(frozen=True)
class MarkdownProblem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ReadFailedError(Exception):
    """One or more files are not valid items; ``problems`` lists each with its line."""

    def __init__(self, problems: list[MarkdownProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _key_line(front_matter: str, key: str) -> int:
    for number, line in enumerate(front_matter.splitlines(), start=2):
        if line.startswith(f"{key}:"):
            return number
    return 1


def read_file(path: Path, root: Path) -> MarkdownItem:
    """Parse one file; raises ``ReadFailedError`` with the file's problems."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not lines or lines[0].strip() != _DELIMITER:
        raise ReadFailedError([MarkdownProblem(path, 1, "the file must start with a '---' line")])
    try:
        closing = next(i for i in range(1, len(lines)) if lines[i].strip() == _DELIMITER)
    except StopIteration:
        raise ReadFailedError(
            [MarkdownProblem(path, 1, "the front matter opened here is never closed by '---'")]
        ) from None
    front_matter = "\n".join(lines[1:closing])
    body = "\n".join(lines[closing + 1 :])
    if body.endswith("\n"):
        body = body[:-1]

    try:
        meta = yaml.safe_load(front_matter) if front_matter.strip() else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        problem = getattr(error, "problem", None) or str(error)
        raise ReadFailedError([MarkdownProblem(path, line, f"invalid YAML: {problem}")]) from None
    if not isinstance(meta, dict):
        raise ReadFailedError([MarkdownProblem(path, 2, "the front matter must be a mapping")])
    meta = _jsonable(meta)

    relative = path.relative_to(root)
    default_type = relative.parts[0] if len(relative.parts) > 1 else None
    fields: dict[str, Any] = {}
    for key in RESERVED_KEYS:
        if key in meta:
            fields[key] = meta.pop(key)
    fields.setdefault("slug", path.stem)
    if default_type is not None:
        fields.setdefault("type", default_type)
    data = dict(meta["data"]) if isinstance(meta.get("data"), dict) else meta
    if body.strip():
        data["body"] = body
    fields["data"] = data

    try:
        item = validate_create(fields)
    except ValidationFailedError as error:
        problems = [
            MarkdownProblem(path, _key_line(front_matter, name.split(".")[0]), f"{name}: {message}")
            for name, messages in error.fields.items()
            for message in messages
        ]
        raise ReadFailedError(problems) from None
    return MarkdownItem(path=path, item=item)


def read_folder(root: Path) -> list[MarkdownItem]:
    """Parse every ``*.md`` under ``root``; raises ``ReadFailedError`` listing every bad file.

    Two files naming the same (type, slug) are a problem too.
    """
    items: list[MarkdownItem] = []
    problems: list[MarkdownProblem] = []
    seen: dict[tuple[str, str], Path] = {}
    for path in sorted(root.rglob("*.md")):
        try:
            parsed = read_file(path, root)
        except ReadFailedError as error:
            problems.extend(error.problems)
            continue
        except (OSError, UnicodeDecodeError) as error:
            problems.append(MarkdownProblem(path, 1, f"cannot read the file: {error}"))
            continue
        key = (parsed.item.type, parsed.item.slug or path.stem)
        if key in seen:
            problems.append(
                MarkdownProblem(path, 1, f"{key[0]}/{key[1]} is also defined in {seen[key]}")
            )
            continue
        seen[key] = path
        items.append(parsed)
    if problems:
        raise ReadFailedError(problems)
    return items


def render_item(item: dict[str, Any]) -> str:
    """Render one wire-shaped item as Markdown text with front matter."""
    data = dict(item["data"])
    body = data.pop("body", None)
    if body is not None and not isinstance(body, str):
        data["body"] = body
        body = None
    meta: dict[str, Any] = {
        "type": item["type"],
        "slug": item["slug"],
        "status": item["status"],
        "sortOrder": item["sortOrder"],
    }
    if any(key in data for key in (*RESERVED_KEYS, "data")):
        meta["data"] = data
    else:
        meta.update(data)
    front_matter = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    text = f"{_DELIMITER}\n{front_matter}{_DELIMITER}\n"
    if body:
        text += body + "\n"
    return text


def write_folder(root: Path, items: list[dict[str, Any]]) -> list[Path]:
    """Write each item to ``root/<type>/<slug>.md``; returns the paths written."""
    written = []
    for item in items:
        path = root / item["type"] / f"{item['slug']}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_item(item), encoding="utf-8")
        written.append(path)
    return written
