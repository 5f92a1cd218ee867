"""The trivial NATS responder of baseline 2: replies to every request with a fixed body.

Run as ``python -m bench.baselines.responder``; it listens in a queue group on
``responder_subject(NATS_NAMESPACE)`` until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import nats

from bench.baselines import BODY_FILE_VARIABLE, responder_subject

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["main"]


async def _serve(body: bytes) -> None:
    client = await nats.connect(os.environ["NATS_URL"], name="bench-responder")

    async def answer(message: Msg) -> None:
        await message.respond(body)

    await client.subscribe(
        responder_subject(os.environ["NATS_NAMESPACE"]), queue="bench", cb=answer
    )
    await client.flush()
    print("responder ready", flush=True)

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await client.drain()


def main() -> None:
    asyncio.run(_serve(Path(os.environ[BODY_FILE_VARIABLE]).read_bytes()))


if __name__ == "__main__":
    main()
