"""What admission decides with: open connections per address and failed logins per address.

One process keeps them in dictionaries (``LocalPeerCounts``, ``LocalFailedLogins``). Under
``mailsrv serve --workers N`` each worker is given the shared table of
``mailsrv.workers.shared_peers`` instead, so every worker gives a connection the same answer.
Times are ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every process on a machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PeerCounts(Protocol):
    """Open connections, in total and per peer address."""

    def add(self, peer: str, delta: int) -> None: ...

    def count(self, peer: str) -> int: ...

    def total(self) -> int: ...


class FailedLogins(Protocol):
    """Failed logins per peer address, and the blocks they earn."""

    def blocked(self, peer: str, now: float) -> bool: ...

    def record(self, peer: str, now: float, limit: int, block_seconds: float) -> int:
        """Count one more failure (blocking ``peer`` for ``block_seconds`` once the count
        reaches ``limit``); returns the count."""
        ...

    def clear(self, peer: str) -> None: ...


class LocalPeerCounts:
    def __init__(self) -> None:
        self._by_peer: dict[str, int] = {}
        self._total = 0

    def add(self, peer: str, delta: int) -> None:
        count = self._by_peer.get(peer, 0) + delta
        if count > 0:
            self._by_peer[peer] = count
        else:
            self._by_peer.pop(peer, None)
        self._total += delta

    def count(self, peer: str) -> int:
        return self._by_peer.get(peer, 0)

    def total(self) -> int:
        return self._total


@dataclass(slots=True)
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


class LocalFailedLogins:
    def __init__(self) -> None:
        self._by_peer: dict[str, _Failures] = {}

    def blocked(self, peer: str, now: float) -> bool:
        f = self._by_peer.get(peer)
        return f is not None and f.blocked_until > now

    def record(self, peer: str, now: float, limit: int, block_seconds: float) -> int:
        f = self._by_peer.setdefault(peer, _Failures())
        f.count += 1
        if f.count >= limit:
            f.blocked_until = now + block_seconds
        return f.count

    def clear(self, peer: str) -> None:
        self._by_peer.pop(peer, None)
