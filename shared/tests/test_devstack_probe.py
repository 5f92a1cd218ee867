"""The container health probe: finding the service kind and probing over NATS."""

from __future__ import annotations

from pathlib import Path

import pytest
from portfolio_shared.devstack.probe import kind_of_main_process, probe
from portfolio_shared.testing.servers import ManagedServer


@pytest.mark.parametrize(
    ("cmdline", "kind"),
    [
        (b"python\0-m\0portfolio_content\0", "content"),
        (b"/app/.venv/bin/python\0-m\0portfolio_gateway\0", "gateway"),
        (b"python\0-m\0portfolio_content.ops\0backup\0", None),
        (b"nats-server\0--jetstream\0", None),
    ],
)
def test_probe_reads_kind_from_main_command(
    tmp_path: Path, cmdline: bytes, kind: str | None
) -> None:
    path = tmp_path / "cmdline"
    path.write_bytes(cmdline)

    assert kind_of_main_process(path) == kind


def test_probe_without_cmdline_finds_no_kind(tmp_path: Path) -> None:
    assert kind_of_main_process(tmp_path / "missing") is None


def test_probe_fails_when_no_instance_replies(nats_server: ManagedServer, namespace: str) -> None:
    healthy, reason = probe("content", {"NATS_URL": nats_server.url, "NATS_NAMESPACE": namespace})

    assert healthy is False
    assert "no instance" in reason


def test_probe_fails_when_gateway_is_not_listening() -> None:
    healthy, _ = probe("gateway", {"GATEWAY_PORT": "9"})

    assert healthy is False
