"""Structured logging: one JSON object a line with ``timestamp``, ``level``, ``context``, ``message``.

``request_id`` and ``trace_id`` are added from the current context when there
is one, so ``jq '.level, .context, .message'`` reads every service's output.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["bind_request_context", "configure_logging", "get_logger"]


def _rename_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["message"] = event.pop("event", "")
    return event


def _add_trace_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event.setdefault("trace_id", format(span_context.trace_id, "032x"))
    return event


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and stdlib logging to stdout in the chosen format."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_trace_id,
    ]
    renderer: Any
    if fmt == "json":
        shared.append(_rename_event)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()

    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                # Before remove_processors_meta, which drops the ``_record`` it reads.
                _stdlib_context,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if level == "DEBUG" else level)


def _stdlib_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    if record is not None:
        event.setdefault("context", record.name)
    if "event" in event:
        event["message"] = event.pop("event")
    return event


def get_logger(context: str) -> structlog.stdlib.BoundLogger:
    """Return a logger whose lines carry ``context`` (the component that logs, e.g. ``content.outbox``)."""
    # Initial values keep the proxy lazy: a module-level logger created before
    # ``configure_logging`` still renders with the configuration in force.
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(context=context)
    return logger


def bind_request_context(**values: str | None) -> None:
    """Attach ids such as ``request_id`` to every log line of the current task."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})
