"""The README's configuration tables name every variable the services read, with its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from compose_file import REPOSITORY, SERVICE_KINDS, settings_class
from portfolio_gateway.webapp import WebAppSettings
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

README = REPOSITORY / "README.md"

EXTRA_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {"gateway": (WebAppSettings,)}
"""Settings classes a service reads besides its main one."""

_ROW = re.compile(r"^\| `(?P<name>[A-Z][A-Z0-9_]*)` \| (?P<default>[^|]*) \|", re.MULTILINE)


def render_default(value: Any) -> str:
    """The default as the README writes it."""
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if value in ("", ()):
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return f"./{value}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _documented() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    return {
        match.group("name"): match.group("default").strip().strip("`")
        for match in _ROW.finditer(text)
    }


def _expected(kind: str) -> dict[str, str]:
    classes = (settings_class(kind), *EXTRA_SETTINGS.get(kind, ()))
    return {
        name.upper(): render_default(field.default)
        for cls in classes
        for name, field in cls.model_fields.items()
    }


@pytest.mark.parametrize("kind", SERVICE_KINDS)
def test_readme_lists_every_variable(kind: str) -> None:
    missing = set(_expected(kind)) - set(_documented())

    assert missing == set()


@pytest.mark.parametrize("kind", SERVICE_KINDS)
def test_readme_states_each_default(kind: str) -> None:
    documented = _documented()

    wrong = {
        name: (documented[name], default)
        for name, default in _expected(kind).items()
        if name in documented and documented[name] != default
    }

    assert wrong == {}


def test_readme_lists_no_unknown_variable() -> None:
    known = {name for kind in SERVICE_KINDS for name in _expected(kind)}

    unknown = set(_documented()) - known

    assert unknown == set()


def test_readme_gives_reference_page_url() -> None:
    assert "http://127.0.0.1:8000/app/" in README.read_text(encoding="utf-8")
