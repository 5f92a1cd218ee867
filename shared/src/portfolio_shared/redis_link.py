"""A Redis connection that knows whether Redis is up, for components with a memory fallback.

Callers ask ``link.client`` for a client before each operation: it is ``None``
when ``REDIS_URL`` is unset or after a failure. ``report_failure`` switches the
link to fallback mode (logged once, counted) and starts a background probe that
pings Redis until it answers, then switches back (logged once). So a Redis
outage costs one failed operation per component, not one per request.

``check`` (readiness) also notices an outage while nothing uses Redis: when
the last ping is older than ``VERIFY_INTERVAL_S`` it pings Redis in the
background, and a failed ping switches to the fallback as a failed operation
does. So a readiness report reflects Redis as of about a second ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import redis.asyncio as redis_asyncio
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from portfolio_shared.contract.messages import CheckResult

__all__ = ["REDIS_ERRORS", "RedisLink"]

log = get_logger("redis")

REDIS_UP = Gauge(
    "redis_up", "1 while Redis answers, 0 while the memory fallback is in use.", ["component"]
)
REDIS_ERRORS = Counter(
    "redis_errors_total", "Redis operations that failed and fell back to memory.", ["component"]
)
REDIS_FALLBACKS = Counter(
    "redis_fallback_switches_total", "Switches from Redis to the memory fallback.", ["component"]
)

PROBE_INTERVAL_S = 1.0
"""Pause between pings while Redis is down, in seconds."""

VERIFY_INTERVAL_S = 1.0
"""Age of the last ping after which ``check`` starts a new one in the background, in seconds."""

OPERATION_TIMEOUT_S = 0.25
"""Socket timeout of one Redis operation, so a hung Redis fails fast, in seconds."""


class RedisLink:
    """Optional Redis client plus its up/down state, for one component (``cache``, ``ratelimit``)."""

    def __init__(self, url: str | None, *, component: str, key_prefix: str = "") -> None:
        self.component = component
        self.key_prefix = key_prefix
        self.configured = url is not None
        self._client: redis_asyncio.Redis | None = None
        if url is not None:
            self._client = redis_asyncio.from_url(
                url,
                socket_timeout=OPERATION_TIMEOUT_S,
                socket_connect_timeout=OPERATION_TIMEOUT_S,
                retry_on_timeout=False,
                health_check_interval=0,
            )
        self._up = self.configured
        self._probe: asyncio.Task[None] | None = None
        self._verifying: asyncio.Task[None] | None = None
        self._verified_at = time.monotonic()
        REDIS_UP.labels(component).set(1 if self._up else 0)

    @property
    def client(self) -> redis_asyncio.Redis | None:
        """The client while Redis is up, else ``None`` (use the memory fallback)."""
        return self._client if self._up else None

    @property
    def up(self) -> bool:
        return self._up

    def key(self, *parts: str) -> str:
        """Build a key: the configured prefix, then ``parts`` joined by colons."""
        return self.key_prefix + ":".join(parts)

    def report_failure(self, error: BaseException) -> None:
        """Switch to the memory fallback after a failed operation, and start probing."""
        REDIS_ERRORS.labels(self.component).inc()
        if not self._up:
            return
        self._up = False
        REDIS_UP.labels(self.component).set(0)
        REDIS_FALLBACKS.labels(self.component).inc()
        log.warning(
            "redis unavailable, using memory fallback",
            component=self.component,
            error=str(error) or type(error).__name__,
        )
        with contextlib.suppress(RuntimeError):
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        assert self._client is not None
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                await self._client.ping()
            except (RedisError, OSError):
                continue
            self._up = True
            REDIS_UP.labels(self.component).set(1)
            log.info("redis available again, leaving memory fallback", component=self.component)
            return

    def check(self) -> CheckResult:
        """Readiness of this link: not critical, because memory takes over.

        Starts a background ping when the last one is older than ``VERIFY_INTERVAL_S``.
        """
        from portfolio_shared.contract.messages import CheckResult

        self._verify_in_background()

        if not self.configured:
            return CheckResult(
                status="ok", critical=False, fallback="memory", detail="REDIS_URL is not set"
            )
        if self._up:
            return CheckResult(status="ok", critical=False)
        return CheckResult(
            status="error", critical=False, fallback="memory", detail="redis unreachable"
        )

    def _verify_in_background(self) -> None:
        if not self._up or self._client is None or self._verifying is not None:
            return
        now = time.monotonic()
        if now - self._verified_at < VERIFY_INTERVAL_S:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._verified_at = now
        self._verifying = loop.create_task(self._verify())

    async def _verify(self) -> None:
        assert self._client is not None
        try:
            await self._client.ping()
        except (RedisError, OSError) as error:
            self.report_failure(error)
        finally:
            self._verifying = None

    async def close(self) -> None:
        if self._verifying is not None:
            self._verifying.cancel()
        if self._probe is not None:
            self._probe.cancel()
        if self._client is not None:
            await self._client.aclose()
