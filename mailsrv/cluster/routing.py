"""Which live host serves a key: the first in its rendezvous order whose heartbeat is fresh
and whose port answers a TCP connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from mailsrv.cluster.heartbeat import STALE_SECONDS, beat_age
from mailsrv.cluster.rendezvous import rank

log = logging.getLogger("mailsrv.cluster")

#: Seconds a host's port may take to accept a connection before it counts as down: loopback
#: and a LAN answer in well under a millisecond; a dead host's SYN gets no answer at all.
CONNECT_TIMEOUT = 0.5
#: Seconds a host's state is trusted once checked (well inside the 10 s failover promise).
CHECK_TTL = 1.0


async def answers(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``CONNECT_TIMEOUT`` seconds."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Router:
    """Picks the host for a key among ``hosts`` sharing ``root`` (one per server).

    What a check found is kept for ``CHECK_TTL`` seconds, so a burst of logins does not
    connect to every host once per login (each probe is a session the host greets and drops).
    """

    def __init__(self, root: Path, hosts: Sequence[str]) -> None:
        self.root = root
        self.hosts = tuple(hosts)
        self._checked: dict[tuple[str, int], tuple[float, bool]] = {}

    async def pick(self, key: str, port: int) -> str | None:
        """The first host in ``key``'s order that is up, or None when none is."""
        for host in rank(key, self.hosts):
            if await self.is_up(host, port):
                return host
        return None

    async def is_up(self, host: str, port: int) -> bool:
        """A fresh heartbeat in the root and a port that answers."""
        now = time.monotonic()
        checked = self._checked.get((host, port))
        if checked is not None and now - checked[0] < CHECK_TTL:
            return checked[1]
        up = await self._check(host, port)
        self._checked[(host, port)] = (time.monotonic(), up)
        return up

    async def _check(self, host: str, port: int) -> bool:
        age = await asyncio.to_thread(beat_age, self.root, host)
        if age is None or age > STALE_SECONDS:
            why = "no heartbeat" if age is None else f"its heartbeat is {age:.1f} s old"
            log.info("cluster: skipping %s: %s", host, why)
            return False
        if not await answers(host, port):
            log.info("cluster: skipping %s: port %d does not answer", host, port)
            return False
        return True
