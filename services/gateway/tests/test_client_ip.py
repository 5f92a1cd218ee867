"""Who the client is: the socket peer, X-Forwarded-For only from trusted proxies, salted hashes."""

from __future__ import annotations

import hashlib

import pytest
from portfolio_gateway.ratelimit.client_ip import (
    UNKNOWN_CLIENT,
    bucket_address,
    client_address,
    client_hash,
    parse_trusted_proxies,
)

PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.168.1.1, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # An untrusted peer is the client, whatever it claims.
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        ("203.0.113.9", "10.0.0.1, 1.2.3.4", "203.0.113.9"),
        # A trusted peer: the rightmost entry that is not a trusted proxy.
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.1.2.3", "198.51.100.7"),
        ("192.168.1.1", "198.51.100.7 , 10.9.9.9", "198.51.100.7"),
        # A trusted peer without the header is the client.
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        # Only trusted proxies in the header: the leftmost one.
        ("10.0.0.5", "10.0.0.7, 10.0.0.6", "10.0.0.7"),
        # An unparseable entry stops at the nearest trusted hop.
        ("10.0.0.5", "198.51.100.7, garbage", "10.0.0.5"),
        ("10.0.0.5", "198.51.100.7, garbage, 10.0.0.6", "10.0.0.6"),
        # Ports and brackets as proxies write them.
        ("10.0.0.5", "198.51.100.7:4711", "198.51.100.7"),
        ("10.0.0.5", "[2001:db8::1]:4711", "2001:db8::1"),
        ("10.0.0.5", "2001:db8::1", "2001:db8::1"),
        # IPv4-mapped IPv6 peers are their IPv4 address, trusted or not.
        ("::ffff:203.0.113.9", "1.2.3.4", "203.0.113.9"),
        ("::ffff:10.0.0.5", "198.51.100.7", "198.51.100.7"),
        ("fd00::1", "198.51.100.7", "198.51.100.7"),
    ],
)
def test_client_address(peer: str, forwarded_for: str | None, expected: str) -> None:
    assert client_address(peer, forwarded_for, PROXIES) == expected


def test_no_trusted_proxies_header_ignored() -> None:
    assert client_address("127.0.0.1", "198.51.100.7", ()) == "127.0.0.1"


def test_missing_peer_is_the_unknown_client() -> None:
    assert client_address(None, "198.51.100.7", PROXIES) == UNKNOWN_CLIENT


def test_non_address_peer_kept_as_given() -> None:
    assert client_address("testclient", "198.51.100.7", PROXIES) == "testclient"


def test_ipv6_client_limited_per_64() -> None:
    assert bucket_address("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"


def test_ipv4_client_is_limited_by_its_address() -> None:
    assert bucket_address("198.51.100.7") == "198.51.100.7"


def test_hash_is_16_hex_digits() -> None:
    assert len(client_hash("198.51.100.7", "salt")) == 16


def test_hash_without_salt_is_plain() -> None:
    expected = hashlib.sha256(b"198.51.100.7").hexdigest()[:16]
    assert client_hash("198.51.100.7", "") == expected


def test_salt_changes_the_hash() -> None:
    assert client_hash("198.51.100.7", "a") != client_hash("198.51.100.7", "b")


def test_trusted_proxies_parse_from_a_list() -> None:
    assert len(parse_trusted_proxies(["10.0.0.0/8", " ", "::1"])) == 2


def test_invalid_trusted_proxy_names_the_entry() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_trusted_proxies("10.0.0.0/8,10.0.0.300")
