"""Finding every running service instance through NATS micro discovery.

One ``$SRV.PING.<service name>`` is published per service kind, all with the
same reply inbox, and every reply that arrives within the discovery window
names one instance. The number of replies is not known in advance, so discovery
always waits the whole window; ``on_found`` lets a caller start work on an
instance as soon as its reply arrives instead of after the window.

An instance that answered an earlier discovery but not this one (a crashed or
frozen process) stays known for ``forget_after_s`` and is returned as silent,
so it can be reported as down instead of vanishing from view.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nats.micro.service import ServiceVerb, control_subject
from portfolio_shared.contract.subjects import SERVICE_KINDS
from portfolio_shared.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from nats.aio.msg import Msg
    from portfolio_shared.contract.subjects import Subjects
    from portfolio_shared.nats_client import NatsClient

__all__ = ["Discovery", "DiscoveryRound", "Instance"]

log = get_logger("health.discovery")


@dataclass(frozen=True)
class Instance:
    """One running replica of one service."""

    kind: str
    """Service kind: ``gateway``, ``content``, ``chat`` or ``health``."""

    micro_id: str
    """Id of its micro service registration; its per-instance subjects use it."""

    name: str
    """Its name in metrics and checks: ``INSTANCE_ID`` when set, else the micro id."""


@dataclass
class DiscoveryRound:
    """Result of one discovery round."""

    answered: list[Instance]
    """Instances that replied to the ping, in reply order."""

    silent: list[Instance]
    """Instances known from earlier rounds that did not reply this time."""


@dataclass
class Discovery:
    """Discovers the instances of one namespace and remembers those seen recently."""

    client: NatsClient
    subjects: Subjects
    window_s: float
    forget_after_s: float = 60.0
    kinds: Iterable[str] = SERVICE_KINDS
    clock: Callable[[], float] = time.monotonic
    _last_seen: dict[str, tuple[Instance, float]] = field(default_factory=dict, init=False)

    async def run(self, on_found: Callable[[Instance], None] | None = None) -> DiscoveryRound:
        """Ping every service kind and gather the replies for ``window_s`` seconds."""
        kind_by_name = {self.subjects.service_name(kind): kind for kind in self.kinds}
        answered: dict[str, Instance] = {}

        async def on_reply(msg: Msg) -> None:
            if not msg.data:
                # The server's "no responders" status for a kind with no instance.
                return
            instance = _parse_ping(msg.data, kind_by_name)
            if instance is None or instance.micro_id in answered:
                return
            answered[instance.micro_id] = instance
            if on_found is not None:
                on_found(instance)

        inbox = self.client.new_inbox()
        subscription = await self.client.subscribe(inbox, cb=on_reply)
        try:
            for name in kind_by_name:
                await self.client.publish(
                    control_subject(ServiceVerb.PING, name=name), b"", reply=inbox
                )
            await asyncio.sleep(self.window_s)
        finally:
            await subscription.unsubscribe()

        return self._remember(list(answered.values()))

    def _remember(self, answered: list[Instance]) -> DiscoveryRound:
        now = self.clock()
        answered_ids = {instance.micro_id for instance in answered}
        for instance in answered:
            self._last_seen[instance.micro_id] = (instance, now)
        silent: list[Instance] = []
        for micro_id, (instance, seen_at) in list(self._last_seen.items()):
            if micro_id in answered_ids:
                continue
            if now - seen_at > self.forget_after_s:
                del self._last_seen[micro_id]
                log.info("instance forgotten", service=instance.kind, instance=instance.name)
                continue
            silent.append(instance)
        return DiscoveryRound(answered=answered, silent=silent)


def _parse_ping(payload: bytes, kind_by_name: dict[str, str]) -> Instance | None:
    try:
        ping = json.loads(payload)
        kind = kind_by_name[ping["name"]]
        micro_id = str(ping["id"])
    except (ValueError, KeyError, TypeError):
        log.warning("discovery reply ignored: not a ping response of this namespace")
        return None
    metadata = ping.get("metadata") or {}
    name = str(metadata.get("instance") or micro_id)
    return Instance(kind=kind, micro_id=micro_id, name=name)
