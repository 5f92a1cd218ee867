"""Every command of ``docs/RUNBOOK.md`` works.

Each ``bash`` block runs, in document order, with ``bash -euo pipefail``
against one live stack with Redis, from the repository root, with the
variables the runbook assumes (``API``, ``ADMIN_API_KEY``, ``REDIS_URL``,
``REDIS_KEY_PREFIX``, ``DATA_DIR``, ...). ``shell`` blocks need Docker or Turso,
so only the compose services, Make targets and operator commands they name are
checked against the compose file, the Makefile and the operator CLI.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from compose_file import REPOSITORY, load_compose
from portfolio_shared.testing.fake_llm import FakeLlm
from portfolio_shared.testing.servers import ManagedServer
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator

RUNBOOK = REPOSITORY / "docs" / "RUNBOOK.md"

BLOCK_TIMEOUT_S = 120.0
"""Maximum run time of one block (it may call make and the operator CLI)."""

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<language>bash|shell)\n(?P<body>.*?)^(?P=indent)```",
    re.MULTILINE | re.DOTALL,
)
_HEADING = re.compile(r"^#+ (?P<title>.+)$", re.MULTILINE)

_COMPOSE_OPTIONS_WITH_VALUE = {"--since", "--tail", "--profile", "-e", "--scale", "-f"}


@dataclass(frozen=True)
class Block:
    language: str
    heading: str
    number: int
    body: str

    @property
    def name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"{slug}-{self.number}"


def runbook_blocks() -> list[Block]:
    """The fenced ``bash`` and ``shell`` blocks of the runbook, in document order."""
    text = RUNBOOK.read_text(encoding="utf-8")
    headings = [(match.start(), match.group("title")) for match in _HEADING.finditer(text)]
    blocks: list[Block] = []
    counts: dict[str, int] = {}
    for match in _FENCE.finditer(text):
        heading = next(
            (title for start, title in reversed(headings) if start < match.start()), "top"
        )
        counts[heading] = counts.get(heading, 0) + 1
        body = textwrap.dedent(match.group("body"))
        blocks.append(Block(match.group("language"), heading, counts[heading], body))
    return blocks


BASH_BLOCKS = [block for block in runbook_blocks() if block.language == "bash"]
SHELL_BLOCKS = [block for block in runbook_blocks() if block.language == "shell"]


@pytest.fixture(scope="module")
def runbook_stack(
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """One stack with Redis (under a key prefix of its own) and a fake LLM provider."""
    import redis

    prefix = f"test-{secrets.token_hex(6)}:"
    with FakeLlm() as fake_llm:
        options = StackOptions(
            nats_url=nats_server.url,
            data_dir=tmp_path_factory.mktemp("runbook"),
            redis_url=redis_server.url,
            redis_key_prefix=prefix,
            llm_base_url=fake_llm.base_url,
        )
        with Stack(options) as stack:
            stack.start_all()
            yield stack
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def _environment(stack: Stack) -> dict[str, str]:
    environ = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(stack.data_dir)),
        "LANG": "C.UTF-8",
        "API": stack.gateway_url,
        "ADMIN_API_KEY": stack.admin_key,
        "NATS_URL": stack.nats_url,
        "NATS_NAMESPACE": stack.namespace,
        "DATA_DIR": str(stack.data_dir),
        "TURSO_DATABASE_URL": stack.database_url,
        "REDIS_KEY_PREFIX": stack.options.redis_key_prefix,
        "UV_PYTHON_DOWNLOADS": "never",
    }
    if stack.redis_url is not None:
        environ["REDIS_URL"] = stack.redis_url
    return environ


@pytest.mark.parametrize("block", BASH_BLOCKS, ids=[block.name for block in BASH_BLOCKS])
def test_runbook_bash_block_runs(runbook_stack: Stack, block: Block) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.body],
        cwd=REPOSITORY,
        env=_environment(runbook_stack),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 0, (
        f"{block.body}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def test_runbook_restore_keeps_every_content_row(runbook_stack: Stack) -> None:
    import sqlite3

    restored = runbook_stack.data_dir / "restored.db"
    if not restored.exists():
        pytest.fail("the restore block did not create DATA_DIR/restored.db")

    counts = []
    for path in (runbook_stack.data_dir / "portfolio.db", restored):
        with sqlite3.connect(path) as connection:
            counts.append(connection.execute("SELECT COUNT(*) FROM content").fetchone()[0])

    assert counts[0] > 0
    assert counts[1] == counts[0]


def _audit_filter() -> str:
    """The jq filter of the runbook's audit step."""
    for block in SHELL_BLOCKS:
        match = re.search(r"jq -cR '([^']+)'", block.body)
        if block.heading.startswith("Admin key compromise") and match is not None:
            return match.group(1)
    raise LookupError("no jq -cR filter in the runbook's admin key procedure")


def test_runbook_audit_filter_finds_admin_actions(runbook_stack: Stack) -> None:
    import httpx

    response = httpx.post(
        f"{runbook_stack.gateway_url}/api/v1/admin/content",
        headers={"X-Admin-Key": runbook_stack.admin_key},
        json={
            "type": "project",
            "slug": f"audit-{secrets.token_hex(4)}",
            "data": {"title": "Audit trail", "description": "Created by the runbook test."},
            "status": "draft",
        },
        timeout=10,
    )
    content_logs = [
        str(path) for path in runbook_stack.log_files() if path.name.startswith("content-")
    ]

    audit = subprocess.run(
        ["jq", "-cR", _audit_filter(), *content_logs],
        capture_output=True,
        text=True,
        check=False,
    )

    assert response.status_code == 201, response.text
    assert audit.returncode == 0, audit.stderr
    assert "admin action" in audit.stdout


# Shell blocks: names checked, not run


def _make_targets() -> set[str]:
    makefile = (REPOSITORY / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE))


def _ops_commands() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "portfolio_content.ops", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(re.findall(r"^    ([a-z][a-z-]+)", result.stdout, re.MULTILINE))


def _command_lines(block: Block) -> list[str]:
    lines = []
    for line in block.body.replace("\\\n", " ").splitlines():
        code = line.split(" #", 1)[0].strip()
        if code and not code.startswith("#"):
            lines.append(code)
    return lines


def _compose_services_named(line: str) -> list[str]:
    """Services a ``$COMPOSE <subcommand> ...`` line names."""
    if "$COMPOSE" not in line:
        return []
    lexer = shlex.shlex(line.split("$COMPOSE", 1)[1], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if word and set(word) <= set("();<>|&"):
            break
        words.append(word)
    named: list[str] = []
    skip_value = False
    subcommand = None
    for word in words:
        if skip_value:
            skip_value = False
            continue
        if word in _COMPOSE_OPTIONS_WITH_VALUE:
            skip_value = True
            continue
        if word.startswith("-") or "$" in word or word in {")", "do", "done"}:
            continue
        if subcommand is None:
            subcommand = word
            continue
        named.append(word)
        if subcommand in {"run", "exec"}:
            break
    return named if subcommand in {"up", "run", "exec", "logs", "restart", "ps"} else []


def test_runbook_shell_blocks_name_real_compose_services() -> None:
    services = set(load_compose()["services"])

    unknown = {
        (block.name, service)
        for block in SHELL_BLOCKS
        for line in _command_lines(block)
        for service in _compose_services_named(line)
        if service not in services
    }

    assert unknown == set()


def test_runbook_names_real_make_targets() -> None:
    targets = _make_targets()

    unknown = {
        (block.name, target)
        for block in [*BASH_BLOCKS, *SHELL_BLOCKS]
        for target in re.findall(r"\bmake ([a-z][a-z0-9-]*)", block.body)
        if target not in targets
    }

    assert unknown == set()


def test_runbook_names_real_operator_commands() -> None:
    commands = _ops_commands()

    unknown = {
        (block.name, command)
        for block in [*BASH_BLOCKS, *SHELL_BLOCKS]
        for command in re.findall(r"portfolio_content\.ops ([a-z][a-z-]*)", block.body)
        if command not in commands
    }

    assert unknown == set()


def test_runbook_has_commands_for_every_procedure() -> None:
    headings = {block.heading for block in [*BASH_BLOCKS, *SHELL_BLOCKS]}

    required = {
        "Health checks",
        "Requests return 429",
        "Content not updating after admin changes",
        "Database connection errors",
        "Circuit breaker recovery",
        "Backup",
        "Restore",
        "Schema migrations",
        "Check cache status",
        "Clear specific keys",
        "Rate limiting",
        "Zero-downtime deployment",
        "Rollback",
        "Monitoring alerts",
        "Admin key compromise: rotation without downtime",
    }

    assert required - headings == set()


# Runs last in this file: it restarts the gateway with other keys.
def test_admin_key_rotation_without_downtime(runbook_stack: Stack) -> None:
    old_key, new_key = runbook_stack.admin_key, secrets.token_urlsafe(32)
    url = f"{runbook_stack.gateway_url}/api/v1/admin/content"

    def status_with(key: str) -> int:
        request = urllib.request.Request(url, headers={"X-Admin-Key": key})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    runbook_stack.stop("gateway")
    runbook_stack.start("gateway", env={"ADMIN_API_KEY": old_key, "ADMIN_API_KEYS": new_key})
    both_accepted = (status_with(old_key), status_with(new_key))
    runbook_stack.stop("gateway")
    runbook_stack.start("gateway", env={"ADMIN_API_KEY": new_key, "ADMIN_API_KEYS": ""})
    after_removal = (status_with(old_key), status_with(new_key))

    assert both_accepted == (200, 200)
    assert after_removal == (401, 200)
