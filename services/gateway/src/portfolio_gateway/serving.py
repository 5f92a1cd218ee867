"""The granian server of ``python -m portfolio_gateway``, with a drain period and worker ids.

On the first SIGTERM or SIGINT the main process does not stop at once. It
sends ``DRAIN_SIGNAL`` to every worker, which from then on reports not-ready
on ``/api/health/ready``, so a load balancer takes the gateway out of rotation.
Every request is still served for ``SHUTDOWN_GRACE_S`` seconds. Then granian
stops as usual: workers stop accepting, finish in-flight requests, run their
lifespan shutdown, and the process exits 0. A second signal during the grace
period stops it at once.

Each worker is started with ``WORKER_NUMBER_ENV`` set to its number (1-based),
so workers of one process tell themselves apart (``worker_instance_id``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from granian.server.mp import MPServer, WorkerProcess

__all__ = ["DRAIN_SIGNAL", "WORKER_NUMBER_ENV", "GatewayServer", "worker_instance_id"]

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
