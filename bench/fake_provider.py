"""The fake LLM provider of the chat benchmark, as a process of its own.

Run as ``python -m bench.fake_provider PORT_FILE``: it starts the shared
OpenAI-compatible ``FakeLlm`` on a free loopback port, writes its base URL to
``PORT_FILE``, and replies to every request with the same short text until SIGTERM.
Recorded request bodies are dropped every second so memory stays flat under load.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from portfolio_shared.testing.fake_llm import FakeLlm, FakeReply

__all__ = ["REPLY_TEXT", "main"]

REPLY_TEXT = "Ada builds event-driven systems; see the projects section for details."
"""Reply text of the fake model to every chat turn."""

FORGET_INTERVAL_S = 1.0
"""Pause between two drops of the recorded request bodies, in seconds."""


def main() -> None:
    port_file = Path(sys.argv[1])
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())

    fake = FakeLlm(default=FakeReply.reply_text(REPLY_TEXT, total_tokens=42)).start()
    port_file.write_text(fake.base_url)
    try:
        while not stopped.wait(FORGET_INTERVAL_S):
            fake.reset()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
