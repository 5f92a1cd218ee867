"""Reading ``deploy/docker-compose.yml`` and ``deploy/Dockerfile`` the way Docker would.

No Docker engine runs on the test machines, so the deploy tests read the files
themselves: ``interpolate`` fills ``${VAR}``, ``${VAR:-default}`` and
``${VAR:?message}`` as compose does, and ``service_variables`` lists the
variables each service's settings class reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from portfolio_shared.settings import CommonSettings
from pydantic import AliasChoices

__all__ = [
    "COMPOSE_FILE",
    "DEPLOY_DIR",
    "DOCKERFILE",
    "ENV_EXAMPLE",
    "REPOSITORY",
    "SERVICE_KINDS",
    "dockerfile_instruction",
    "interpolate",
    "load_compose",
    "referenced_variables",
    "service_variables",
    "settings_class",
]

REPOSITORY = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPOSITORY / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "docker-compose.yml"
DOCKERFILE = DEPLOY_DIR / "Dockerfile"
ENV_EXAMPLE = DEPLOY_DIR / ".env.example"

SERVICE_KINDS = ("content", "chat", "health", "gateway")
"""Compose services built from the project's image, named as the service kinds."""

_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def load_compose() -> dict[str, Any]:
    """The compose file as YAML data (anchors and merge keys resolved), not interpolated."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def referenced_variables(text: str) -> set[str]:
    """Names of the variables ``text`` refers to as ``${NAME...}``."""
    return {match.group("name") for match in _REFERENCE.finditer(text)}


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Fill compose's ``${...}`` references from ``environ``, raising ``KeyError`` for ``:?``."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group("name", "op", "arg")
        current = environ.get(name)
        if operator in {":-", "-"}:
            unset = current is None or (operator == ":-" and current == "")
            return argument if unset else str(current)
        if operator in {":?", "?"}:
            missing = current is None or (operator == ":?" and current == "")
            if missing:
                raise KeyError(f"{name}: {argument}")
            return str(current)
        return current or ""

    return _REFERENCE.sub(replace, value)


def settings_class(kind: str) -> type[CommonSettings]:
    """The settings class of one service kind."""
    if kind == "gateway":
        from portfolio_gateway.settings import GatewaySettings

        return GatewaySettings
    if kind == "content":
        from portfolio_content.settings import ContentSettings

        return ContentSettings
    if kind == "chat":
        from portfolio_chat.settings import ChatSettings

        return ChatSettings
    if kind == "health":
        from portfolio_health.settings import HealthSettings

        return HealthSettings
    raise ValueError(f"unknown service kind {kind!r}")


def service_variables(kind: str) -> dict[str, bool]:
    """Variables the service reads, each mapped to whether it is required (no default)."""
    variables: dict[str, bool] = {}
    for name, field in settings_class(kind).model_fields.items():
        names = [name.upper()]
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names += [str(choice).upper() for choice in alias.choices if isinstance(choice, str)]
        elif isinstance(alias, str):
            names.append(alias.upper())
        for variable in names:
            variables[variable] = field.is_required()
    return variables


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON-array argument of the Dockerfile's last ``name`` instruction (exec form)."""
    found: list[str] | None = None
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name} ["):
            parsed = json.loads(line[len(name) + 1 :])
            assert isinstance(parsed, list)
            found = [str(part) for part in parsed]
    if found is None:
        raise LookupError(f"no exec-form {name} instruction in {DOCKERFILE}")
    return found
