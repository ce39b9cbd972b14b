"""The workers' shared admission state: one small memory-mapped file, made by the supervisor.

Connections: every worker has a slot of its own (a total and 65,536 per-address counters,
32-bit each) that only it writes, so counting needs no lock; a reader sums one counter over the
slots. When a worker dies the supervisor zeroes its slot before the replacement starts (the dead
worker's connections died with it). An address is its bucket by CRC-32: two addresses that
share a bucket share a count, so a limit can only be met early, never exceeded (with 1,000
distinct addresses connected, a new one shares a bucket with one of them 1.5 % of the time).

Failed logins: one table for all, bucket ``(tag, count, blocked until)`` with a 64-bit tag of the
address, changed under an ``fcntl`` lock on the file (released by the kernel if its holder dies).
A colliding address takes the bucket unless the bucket's address is blocked; then the next of
a few buckets is tried.

Cost per connection (open, admission check, close), measured with ``python -m
benchmarks.shared_peers``: see docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator

#: Per-address connection counters per worker slot (a power of two: 256 KiB a slot).
CONN_BUCKETS = 65536
#: Failed-login buckets (24 bytes each: 1.5 MiB).
FAIL_BUCKETS = 65536
#: Buckets tried for an address whose own bucket holds another, blocked, address.
FAIL_PROBES = 4
_FAIL = struct.Struct("<QI4xd")  # tag, count, blocked until (monotonic seconds)


def _tag(peer: str) -> int:
    return int.from_bytes(hashlib.blake2b(peer.encode(), digest_size=8).digest(), "little") or 1


def memory_file(name: str) -> int:
    """A file in memory (Linux ``memfd``), or else an unlinked temporary file: workers inherit
    the descriptor and the mapping across ``fork``, so ``name`` only labels it."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create(name, os.MFD_CLOEXEC)
    fd, name = tempfile.mkstemp(prefix=f"{name}-")
    os.unlink(name)
    return fd


class SharedPeerTable:
    """The mapped file; ``counts(slot)`` and ``failures()`` are what a worker uses."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._slot_size = 4 * (1 + CONN_BUCKETS)
        self._fail_offset = slots * self._slot_size
        size = self._fail_offset + FAIL_BUCKETS * _FAIL.size
        fd = memory_file("mailsrv-peers")
        os.ftruncate(fd, size)
        self._fd = fd
        self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._view = memoryview(self._map)
        self._slots = [
            self._view[i * self._slot_size : (i + 1) * self._slot_size].cast("I")
            for i in range(slots)
        ]

    def close(self) -> None:
        for view in self._slots:
            view.release()
        self._view.release()
        self._map.close()
        os.close(self._fd)

    def clear_slot(self, slot: int) -> None:
        """Forget a dead worker's connections (the supervisor, before its replacement starts)."""
        start = slot * self._slot_size
        self._map[start : start + self._slot_size] = bytes(self._slot_size)

    def counts(self, slot: int) -> SharedPeerCounts:
        return SharedPeerCounts(self._slots, slot)

    def failures(self) -> SharedFailedLogins:
        return SharedFailedLogins(self._map, self._fd, self._fail_offset)


class SharedPeerCounts:
    """``PeerCounts`` over every worker's slot; this worker writes only ``slot``."""

    def __init__(self, slots: list[memoryview], slot: int) -> None:
        self._slots = slots
        self._mine = slots[slot]

    def add(self, peer: str, delta: int) -> None:
        bucket = 1 + (zlib.crc32(peer.encode()) & (CONN_BUCKETS - 1))
        self._mine[bucket] += delta
        self._mine[0] += delta

    def count(self, peer: str) -> int:
        bucket = 1 + (zlib.crc32(peer.encode()) & (CONN_BUCKETS - 1))
        return sum(view[bucket] for view in self._slots)

    def total(self) -> int:
        return sum(view[0] for view in self._slots)


class SharedFailedLogins:
    """``FailedLogins`` in the shared table, changed under the file's lock."""

    def __init__(self, table: mmap.mmap, fd: int, offset: int) -> None:
        self._map, self._fd, self._offset = table, fd, offset

    def _at(self, index: int) -> tuple[int, int, float]:
        tag, count, until = _FAIL.unpack_from(self._map, self._offset + index * _FAIL.size)
        return tag, count, until

    def _find(self, tag: int) -> int | None:
        for i in range(FAIL_PROBES):
            index = (tag + i) % FAIL_BUCKETS
            if self._at(index)[0] == tag:
                return index
        return None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def blocked(self, peer: str, now: float) -> bool:
        index = self._find(_tag(peer))
        return index is not None and self._at(index)[2] > now

    def record(self, peer: str, now: float, limit: int, block_seconds: float) -> int:
        tag = _tag(peer)
        with self._locked():
            index = self._find(tag)
            if index is None:
                index = tag % FAIL_BUCKETS
                for i in range(FAIL_PROBES):  # a bucket whose address is not blocked
                    candidate = (tag + i) % FAIL_BUCKETS
                    if self._at(candidate)[2] <= now:
                        index = candidate
                        break
                count, until = 0, 0.0
            else:
                _, count, until = self._at(index)
            count += 1
            if count >= limit:
                until = now + block_seconds
            _FAIL.pack_into(self._map, self._offset + index * _FAIL.size, tag, count, until)
        return count

    def clear(self, peer: str) -> None:
        tag = _tag(peer)
        if self._find(tag) is None:
            return  # the usual case, a login with no failures before it: no lock taken
        with self._locked():
            index = self._find(tag)
            if index is not None:
                _FAIL.pack_into(self._map, self._offset + index * _FAIL.size, 0, 0, 0.0)
