"""Rendezvous (highest random weight) hashing: which host serves a user.

Every host and key pair gets a weight from a hash of both; a key's hosts in order of falling
weight are its preference list. Every host that computes it gets the same list without talking
to the others, and taking a host out moves only the users it served (each to the next host in
its own list), so users spread over the survivors instead of all landing on one.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence


def weight(host: str, key: str) -> int:
    """The weight of ``host`` for ``key``: 64 bits of BLAKE2b over both (NUL between them, so
    ``("a", "bc")`` and ``("ab", "c")`` differ)."""
    digest = hashlib.blake2b(f"{host}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(key: str, hosts: Sequence[str]) -> list[str]:
    """``hosts`` in ``key``'s order of preference: highest weight first (ties by name)."""
    return sorted(hosts, key=lambda host: (-weight(host, key), host))


def check_backends(hosts: Sequence[str]) -> str | None:
    """Why ``cluster_backends`` cannot be used, or None: nginx takes only an IP address as
    ``Auth-Server``, and a host named twice would get twice the users."""
    seen: set[str] = set()
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return f"must be IP addresses (nginx connects to Auth-Server as given): {host!r}"
        canonical = str(address)
        if canonical != host:
            return f"must name each address in its canonical form: {host!r} is {canonical!r}"
        if host in seen:
            return f"names {host!r} twice"
        seen.add(host)
    return None
