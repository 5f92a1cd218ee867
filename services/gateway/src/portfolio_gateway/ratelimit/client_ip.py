"""Who the client is: its address as the gateway can trust it, and the salted hash that names it.

The client is the socket peer. ``X-Forwarded-For`` is honoured only when the
peer is a trusted proxy (``TRUSTED_PROXIES``). Then the header is read from the
right, skipping trusted proxies, and the first address that is not one is the
client. Entries left of it were written by the client itself and are ignored,
so a spoofed header never changes who the client is.

The raw address never leaves this module's callers: keys, logs and metrics
carry ``client_hash`` only.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "UNKNOWN_CLIENT",
    "IPNetwork",
    "bucket_address",
    "client_address",
    "client_hash",
    "parse_trusted_proxies",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN_CLIENT = "unknown"
"""Address reported when the server gives no socket peer (one shared bucket for all such requests)."""

IPV6_BUCKET_PREFIX = 64
"""IPv6 clients are limited per /64 network, because one host is usually given a whole /64."""


def parse_trusted_proxies(value: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse a CIDR list (a comma-separated string or an iterable of entries).

    A bare address counts as a single-host network. An invalid entry raises
    ``ValueError`` naming it, so a typo stops the gateway at startup instead of
    silently trusting no proxy at all.
    """
    entries = value.split(",") if isinstance(value, str) else list(value)
    networks: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"Invalid trusted proxy {text!r}. Each entry must be an IP address or a CIDR "
                "network such as 10.0.0.0/8."
            ) from None
    return tuple(networks)


def client_address(
    scope_client_host: str | None,
    forwarded_for_header: str | None,
    trusted_proxies: Sequence[IPNetwork],
) -> str:
    """Return the client's address, normalised (IPv4-mapped IPv6 becomes IPv4).

    ``X-Forwarded-For`` is read only when the socket peer is in
    ``trusted_proxies``: the rightmost entry that is not a trusted proxy is the
    client. If every entry is a trusted proxy, the leftmost one is the client.
    An unparseable entry ends the walk at the nearest trusted hop, so a broken
    header can only make requests share that hop's bucket, never get a new one.
    """
    peer = _parse_address(scope_client_host)
    if peer is None:
        return scope_client_host.strip() if scope_client_host else UNKNOWN_CLIENT
    if not forwarded_for_header or not _is_trusted(peer, trusted_proxies):
        return str(peer)

    nearest = peer
    for entry in reversed(forwarded_for_header.split(",")):
        hop = _parse_address(entry)
        if hop is None:
            return str(nearest)
        if not _is_trusted(hop, trusted_proxies):
            return str(hop)
        nearest = hop
    return str(nearest)


def bucket_address(address: str) -> str:
    """Return what the rate limiter counts: the address itself, or its /64 for IPv6."""
    parsed = _parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((parsed, IPV6_BUCKET_PREFIX), strict=False)
        return str(network)
    return address


def client_hash(address: str, salt: str) -> str:
    """Return the first 16 hex digits of SHA-256 of ``salt`` followed by ``address``.

    With an empty salt this is the plain address hash the earlier version used.
    """
    return hashlib.sha256(f"{salt}{address}".encode()).hexdigest()[:16]


def _parse_address(text: str | None) -> IPAddress | None:
    """Parse one address as proxies write it: bare, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if text is None:
        return None
    candidate = text.strip()
    if candidate.startswith("["):
        candidate = candidate[1:].partition("]")[0]
    elif candidate.count(":") == 1:
        candidate = candidate.partition(":")[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, trusted_proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted_proxies)
