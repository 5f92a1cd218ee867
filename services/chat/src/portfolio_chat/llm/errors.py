"""Failures of one call to the LLM provider, as the chat service distinguishes them.

The split decides two things: whether the circuit breaker counts the outcome
as a failure, and what the client is told.
"""

from __future__ import annotations

__all__ = ["ProviderError", "ProviderRejectedError", "ProviderUnavailableError"]


class ProviderError(Exception):
    """Base of every provider failure; ``message`` is safe to show a client."""

    kind: str = "error"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind


# Failures of the provider: retried, counted by the circuit breaker, 502 to the client


class ProviderUnavailableError(ProviderError):
    """The provider timed out, was unreachable, returned 5xx or 429, or sent no usable reply.

    ``kind`` is one of ``timeout``, ``network``, ``http_5xx``, ``rate_limited``,
    ``bad_response`` (the ``kind`` label of ``llm_failures_total``).
    """


# Rejections of one request: not retried, not a circuit failure


class ProviderRejectedError(ProviderError):
    """The provider rejected this request (a 4xx other than 408 and 429).

    ``status`` is the provider's status. A 401 or 403 means the service's own key
    is wrong, so the client gets a 502. Any other status blames the request (a
    prompt over the context window, say), so the client gets a 400.
    """

    kind = "rejected"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
