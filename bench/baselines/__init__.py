"""The two baselines every measured path is compared with, served like the gateway.

1. ``bare_app``: a Litestar app returning a fixed body from memory.
2. ``nats_app``: the same app doing one NATS request/reply per HTTP request to
   ``responder``, a trivial NATS service that replies with a fixed body.

Both read the body from the file named by ``BENCH_BODY_FILE``, so a baseline
sends exactly the bytes of the path it is compared with.
"""

from __future__ import annotations

__all__ = ["BASELINE_PATH", "BODY_FILE_VARIABLE", "responder_subject"]

BODY_FILE_VARIABLE = "BENCH_BODY_FILE"
"""Environment variable naming the file whose bytes a baseline returns."""

BASELINE_PATH = "/baseline"
"""The one route each baseline app serves."""


def responder_subject(namespace: str) -> str:
    """Return the subject of the trivial responder, which belongs to the benchmark alone."""
    return f"{namespace}.bench.v1.echo"
