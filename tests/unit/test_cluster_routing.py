"""The router: the first host of a key's order that has a fresh heartbeat and answers, and what
a check found trusted for ``CHECK_TTL`` (no sockets: the port check is replaced)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailsrv.cluster import heartbeat, routing
from mailsrv.cluster.heartbeat import beat_path, write_beat
from mailsrv.cluster.rendezvous import rank
from mailsrv.cluster.routing import Router

HOSTS = ("10.0.0.2", "10.0.0.3", "10.0.0.4")


@dataclass
class Ports:
    """Which hosts' ports answer, and every host a check probed."""

    up: set[str] = field(default_factory=set)
    probes: list[str] = field(default_factory=list)


@pytest.fixture
def listening(monkeypatch: pytest.MonkeyPatch) -> Ports:
    ports = Ports()

    async def answers(host: str, port: int) -> bool:
        ports.probes.append(host)
        return host in ports.up

    monkeypatch.setattr(routing, "answers", answers)
    monkeypatch.setattr(routing, "CHECK_TTL", 0.0)
    return ports


async def test_the_first_live_host_in_the_keys_order(tmp_path: Path, listening: Ports) -> None:
    order = rank("alice", HOSTS)
    router = Router(tmp_path, HOSTS)
    assert await router.pick("alice", 143) is None  # nobody beats, nobody answers
    for host in HOSTS:
        write_beat(tmp_path, host, {})
    listening.up.update(HOSTS)
    assert await router.pick("alice", 143) == order[0]
    listening.up.discard(order[0])  # its port is closed
    assert await router.pick("alice", 143) == order[1]
    listening.up.add(order[0])
    stale = time.time() - heartbeat.STALE_SECONDS - 1
    os.utime(beat_path(tmp_path, order[0]), (stale, stale))  # it stopped beating
    assert await router.pick("alice", 143) == order[1]
    beat_path(tmp_path, order[1]).unlink()  # stopped cleanly
    assert await router.pick("alice", 143) == order[2]


async def test_a_check_is_trusted_for_a_while(
    tmp_path: Path, listening: Ports, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routing, "CHECK_TTL", 3600.0)
    write_beat(tmp_path, HOSTS[0], {})
    router = Router(tmp_path, HOSTS[:1])
    assert await router.pick("alice", 143) is None
    listening.up.add(HOSTS[0])
    assert await router.pick("alice", 143) is None  # still what the last check found
    assert listening.probes == [HOSTS[0]]
    monkeypatch.setattr(routing, "CHECK_TTL", 0.0)
    assert await router.pick("alice", 143) == HOSTS[0]
