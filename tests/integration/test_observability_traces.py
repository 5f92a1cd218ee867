"""One trace across real processes: the gateway's span and the content service's
handler span share the trace id the client sent in ``traceparent``.

The services export spans with the console exporter (``OTEL_TRACES_EXPORTER=console``),
which writes them to each process's log.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from stack import Stack

    from conftest import MakeStack

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACING_ENV = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}


def log_mentions_until(stack: Stack, kind: str, needle: str, *, deadline_s: float = 10.0) -> bool:
    """Whether ``kind``'s log contains ``needle`` before the deadline (spans are exported in batches)."""
    deadline = time.monotonic() + deadline_s
    while needle not in stack.logs(kind):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def test_trace_spans_gateway_and_content(make_stack: MakeStack) -> None:
    stack = make_stack(env=TRACING_ENV, llm=False)

    response = httpx.get(
        stack.gateway_url + "/api/v1/content/bundle",
        headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        timeout=5.0,
    )

    assert response.status_code == 200
    assert log_mentions_until(stack, "gateway", f'"trace_id": "0x{TRACE_ID}"')
    assert log_mentions_until(stack, "content", f'"trace_id": "0x{TRACE_ID}"')
