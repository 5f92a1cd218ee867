"""``/api/metrics`` of the real system: every service's samples, one valid exposition."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from portfolio_shared.testing.fake_llm import FakeLlm
    from stack import Stack

    from conftest import MakeStack

SCRAPE_TIMEOUT_S = 5.0
"""Deadline of one scrape; the gateway waits at most 3 s for the other instances."""


def scrape(stack: Stack) -> str:
    response = httpx.get(stack.gateway_url + "/api/metrics", timeout=SCRAPE_TIMEOUT_S)
    response.raise_for_status()
    return response.text


def scrape_until(stack: Stack, needle: str, *, deadline_s: float = 10.0) -> str:
    """Scrape until the exposition contains ``needle`` or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    text = scrape(stack)
    while needle not in text and time.monotonic() < deadline:
        time.sleep(0.2)
        text = scrape(stack)
    return text


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run `make test`, which installs it"
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def test_metrics_cover_every_service_and_pass_promtool(
    make_stack: MakeStack, fake_llm: FakeLlm
) -> None:
    stack = make_stack()
    text = scrape_until(stack, 'instance_up{instance="content-0",service="content"} 1.0')

    breaker = re.search(r'^circuit_breaker_state\{[^}]*name="llm"[^}]*service="chat"', text, re.M)
    assert breaker is not None
    for kind in ("content", "chat", "health", "gateway"):
        assert f'instance_up{{instance="{kind}-0",service="{kind}"}} 1.0' in text
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_frozen_service_reported_down(make_stack: MakeStack, fake_llm: FakeLlm) -> None:
    stack = make_stack()
    scrape_until(stack, 'instance_up{instance="chat-0",service="chat"} 1.0')

    stack.freeze("chat")
    text = scrape_until(stack, 'instance_up{instance="chat-0",service="chat"} 0.0')

    assert 'instance_up{instance="chat-0",service="chat"} 0.0' in text
