"""The granian servers of ``python -m portfolio_gateway``, with a drain period and worker ids.

With one worker (``GATEWAY_WORKERS=1``, the default) ``InProcessGateway`` serves
the app in the main process, on granian's embedded server, so the gateway is
one process with one copy of its imports. With more workers ``GatewayServer``
runs granian's supervisor and one child process per worker.

Both stop the same way. On the first SIGTERM or SIGINT every worker gets
``DRAIN_SIGNAL`` and from then on reports not-ready on ``/api/health/ready``,
so a load balancer takes the gateway out of rotation. Every request is still
served for ``SHUTDOWN_GRACE_S`` seconds. Then granian stops accepting, the
workers finish in-flight requests and run their lifespan shutdown, and the
process exits 0. A second signal during the grace period stops it at once.

Each worker runs with ``WORKER_NUMBER_ENV`` set to its number (1-based), so
workers of one process tell themselves apart (``worker_instance_id``) and the
app installs its drain-signal handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from granian.server.embed import Server as EmbeddedServer
from granian.server.mp import MPServer, WorkerProcess
from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DRAIN_SIGNAL",
    "WORKER_NUMBER_ENV",
    "GatewayServer",
    "InProcessGateway",
    "worker_instance_id",
]

log = get_logger("gateway.serving")

DRAIN_SIGNAL = signal.SIGUSR1
"""Signal the main process sends a worker to make it report not-ready."""

WORKER_NUMBER_ENV = "PORTFOLIO_GATEWAY_WORKER"
"""Environment variable with the worker's number, set by ``GatewayServer`` only."""


def worker_instance_id(instance_id: str | None, workers: int) -> str | None:
    """Return the instance id of this worker process.

    With several workers, ``INSTANCE_ID`` gets the suffix ``-w<number>`` so each
    worker's metrics and health checks are its own. Without ``INSTANCE_ID`` the
    runtime names each worker by its unique micro service id, so ``None`` stays.
    """
    number = os.environ.get(WORKER_NUMBER_ENV)
    if instance_id is None or workers < 2 or number is None:
        return instance_id
    return f"{instance_id}-w{number}"


class GatewayServer(MPServer):
    """Granian with a drain period before it stops and numbered workers."""

    def __init__(self, *args: Any, grace_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grace_s = grace_s
        self._draining = False

    def startup(self, spawn_target: Any, target_loader: Any) -> None:
        # Workers inherit the ignored disposition, so a drain request that reaches a
        # worker before its app installed a handler cannot kill it.
        signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
        super().startup(spawn_target, target_loader)  # type: ignore[no-untyped-call]

    # MPServer's own signature, which differs from the one its base class declares.
    def _spawn_worker(  # type: ignore[override]
        self, idx: int, target: Any, callback_loader: Any
    ) -> WorkerProcess:
        # The worker process is started right after this returns, with this environment.
        os.environ[WORKER_NUMBER_ENV] = str(idx + 1)
        return super()._spawn_worker(idx=idx, target=target, callback_loader=callback_loader)

    def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
        """Start the drain period on the first signal; stop at once on a second one."""
        if self._draining or self.grace_s <= 0:
            super().signal_handler_interrupt()  # type: ignore[no-untyped-call]
            return
        self._draining = True
        for worker in list(self.wrks):
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(worker.inner.pid, DRAIN_SIGNAL)
        timer = threading.Timer(self.grace_s, super().signal_handler_interrupt)
        timer.daemon = True
        timer.start()


class InProcessGateway:
    """One worker served in the calling process by granian's embedded server.

    ``serve`` blocks until the server stops and returns the exit status. It is 0
    after a signal-initiated stop. It is 1 when the worker stopped by itself (its
    lifespan startup failed, say) or did not stop within ``kill_timeout_s``
    (requests in flight, or a startup still waiting for NATS).

    NOTE: granian 2.8 calls its embedded server experimental. The gateway's tests
    (drain, rolling restart, faults) and the benchmarks run on it.
    """

    def __init__(
        self,
        app_factory: Callable[[], Any],
        *,
        address: str,
        port: int,
        grace_s: float,
        kill_timeout_s: int,
        **granian_options: Any,
    ) -> None:
        self.grace_s = grace_s
        self.kill_timeout_s = kill_timeout_s
        self._server = EmbeddedServer(
            app_factory, address=address, port=port, factory=True, **granian_options
        )
        self._draining = False
        self._stopping = False

    def serve(self) -> int:
        # The app listens for drain signals only in a numbered worker (see app.py).
        os.environ[WORKER_NUMBER_ENV] = "1"
        # Until the app installs its handler at the end of its startup, a drain signal
        # (sent on SIGTERM) must not take its default action, which ends the process.
        signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
        return asyncio.run(self._serve())

    async def _serve(self) -> int:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, self._on_stop_signal)
        try:
            await self._server.serve()
        except Exception as error:
            # Granian re-raises the worker's failure (FatalError after a failed lifespan
            # startup, say) while it stops, and TimeoutError when the worker outlasted
            # the kill timeout.
            if self._stopping and isinstance(error, TimeoutError):
                log.error(
                    "gateway worker did not stop in time (requests in flight or a hung startup)",
                    kill_timeout_s=self.kill_timeout_s,
                )
            else:
                log.error("gateway worker failed; the gateway stops", error=repr(error))
            return 1
        if not self._stopping:
            log.error("gateway worker exited on its own; the gateway stops")
            return 1
        return 0

    def _on_stop_signal(self) -> None:
        loop = asyncio.get_running_loop()
        if self._draining or self.grace_s <= 0:
            self._stop()
            return
        self._draining = True
        signal.raise_signal(DRAIN_SIGNAL)
        loop.call_later(self.grace_s, self._stop)

    def _stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        # Granian's embedded server reads the kill timeout only as this attribute.
        self._server.workers_kill_timeout = self.kill_timeout_s
        self._server.stop()  # type: ignore[no-untyped-call]
