"""Baseline 1: a bare Litestar app that returns a fixed body from memory."""

from __future__ import annotations

import os
from pathlib import Path

from litestar import Litestar, Response, get

from bench.baselines import BASELINE_PATH, BODY_FILE_VARIABLE

__all__ = ["create_app"]


def create_app() -> Litestar:
    """Build the app; the body is read once, at startup, from ``BENCH_BODY_FILE``."""
    body = Path(os.environ[BODY_FILE_VARIABLE]).read_bytes()

    @get(BASELINE_PATH, sync_to_thread=False)
    def baseline() -> Response[bytes]:
        return Response(body, media_type="application/json")

    return Litestar(route_handlers=[baseline], openapi_config=None, logging_config=None)
