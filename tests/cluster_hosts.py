"""Helpers for tests of several hosts on one machine: 127.0.0.2 and 127.0.0.3 are two hosts."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import pytest

from mailsrv.cluster.rendezvous import rank

HOSTS = ("127.0.0.2", "127.0.0.3")


def require_hosts() -> None:
    """Skip unless 127.0.0.2 and 127.0.0.3 can be bound (Linux: all of 127.0.0.0/8 is loopback;
    elsewhere they must be added as aliases)."""
    for host in HOSTS:
        try:
            with socket.socket() as s:
                s.bind((host, 0))
        except OSError as exc:
            pytest.skip(f"cannot listen on {host} ({exc.strerror}): add it as a loopback alias")


def free_port(hosts: Iterable[str] = HOSTS, taken: Iterable[int] = ()) -> int:
    """A port free on every one of ``hosts`` now (the OS picks it on the first)."""
    hosts = list(hosts)
    avoid = set(taken)
    for _ in range(200):
        with socket.socket() as first:
            first.bind((hosts[0], 0))
            port = int(first.getsockname()[1])
            if port in avoid:
                continue
            others = []
            try:
                for host in hosts[1:]:
                    other = socket.socket()
                    others.append(other)
                    other.bind((host, port))
            except OSError:
                continue
            finally:
                for other in others:
                    other.close()
            return port
    raise RuntimeError(f"no port free on all of {hosts}")


def free_ports(count: int, hosts: Iterable[str] = HOSTS) -> list[int]:
    ports: list[int] = []
    for _ in range(count):
        ports.append(free_port(hosts, ports))
    return ports


def users_of(host: str, count: int, hosts: Iterable[str] = HOSTS) -> list[str]:
    """``count`` user names whose first host is ``host``."""
    hosts = list(hosts)
    out = [f"user{n}" for n in range(1000) if rank(f"user{n}", hosts)[0] == host]
    return out[:count]
