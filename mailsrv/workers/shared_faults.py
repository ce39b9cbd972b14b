"""The faults armed through the console's API, shared by every ``--workers`` worker.

One small memory-mapped file, made by the supervisor before the first fork (as the admission
table of ``mailsrv.workers.shared_peers``), outlives every worker. A slot per armed fault holds
its id, its ``times``, the hits of all workers so far and its description (the API's body, as
JSON); a header holds the highest id given. Every change is made under an ``fcntl`` lock on the
file (the kernel releases it if its holder dies) and, since that lock is the process's, a thread
lock within the process.

- **``times`` counts once.** A worker about to fire a fault claims a hit first
  (``SharedHits.claim``): the claim that would go beyond ``times`` is refused and the slot is
  freed, so two workers hitting the same fault at once fire it exactly ``times`` in total, and
  the others drop it at their next look.
- **Armed and withdrawn in one place.** The console (worker 0) writes a fault's slot as its
  injector adds it (``FaultInjector.share``), before any session can see it, and frees it when
  the API withdraws it; the other workers, told over the console link, look their fault up
  here by id (``handle``). A fault withdrawn or spent is gone for every worker at once, whether
  or not the link's message has arrived.
- **It survives the console.** A worker 0 that replaces a dead one arms again every fault the
  table holds, with the same ids, hits and ``times``, and gives ids above the highest given.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mailsrv.workers.shared_peers import memory_file

#: Faults armed at once, at most.
FAULT_SLOTS = 256
#: The longest description of one fault (its JSON), in bytes.
MAX_BODY = 2048
_HEADER = struct.Struct("<Q")  # the highest id given
_SLOT = struct.Struct("<QqqI4x")  # id (0: free), times (-1: always), hits, body length
_SLOT_SIZE = _SLOT.size + MAX_BODY


@dataclass(frozen=True, slots=True)
class ArmedFault:
    """One fault of the table: what a replaced console arms again."""

    id: int
    body: dict[str, Any]
    hits: int


class SharedFaultTable:
    """The mapped file; worker 0 ``arm``\\ s and ``remove``\\ s, every worker claims hits."""

    def __init__(self, slots: int = FAULT_SLOTS) -> None:
        self.slots = slots
        size = _HEADER.size + slots * _SLOT_SIZE
        fd = memory_file("mailsrv-faults")
        os.ftruncate(fd, size)
        self._fd = fd
        self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._thread_lock = threading.Lock()

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _offset(self, index: int) -> int:
        return _HEADER.size + index * _SLOT_SIZE

    def _slot(self, index: int) -> tuple[int, int, int, int]:
        fault_id, times, hits, length = _SLOT.unpack_from(self._map, self._offset(index))
        return fault_id, times, hits, length

    def _find(self, fault_id: int) -> int | None:
        for index in range(self.slots):
            if self._slot(index)[0] == fault_id:
                return index
        return None

    def _free(self, index: int) -> None:
        _SLOT.pack_into(self._map, self._offset(index), 0, 0, 0, 0)

    @property
    def last_id(self) -> int:
        """The highest fault id given so far (by any worker 0)."""
        with self._locked():
            return int(_HEADER.unpack_from(self._map, 0)[0])

    def arm(self, fault_id: int, times: int | None, body: dict[str, Any]) -> SharedHits:
        """Put a new fault in a free slot; ``ValueError`` when none is free or ``body`` is too
        long to share."""
        data = json.dumps(body, separators=(",", ":")).encode()
        if len(data) > MAX_BODY:
            raise ValueError(f"a fault shared by the workers is described in {MAX_BODY} bytes")
        with self._locked():
            index = self._find(0)
            if index is None:
                raise ValueError(f"at most {self.slots} faults are armed at once with --workers")
            offset = self._offset(index)
            self._map[offset + _SLOT.size : offset + _SLOT.size + len(data)] = data
            _SLOT.pack_into(
                self._map, offset, fault_id, -1 if times is None else times, 0, len(data)
            )
            last = _HEADER.unpack_from(self._map, 0)[0]
            _HEADER.pack_into(self._map, 0, max(last, fault_id))
        return SharedHits(self, index, fault_id)

    def handle(self, fault_id: int) -> SharedHits | None:
        """The shared count of fault ``fault_id``; None when it is spent or withdrawn."""
        with self._locked():
            index = self._find(fault_id)
        return None if index is None else SharedHits(self, index, fault_id)

    def remove(self, fault_id: int) -> None:
        """Withdraw one fault (nothing when it is already spent)."""
        with self._locked():
            index = self._find(fault_id)
            if index is not None:
                self._free(index)

    def clear(self) -> None:
        with self._locked():
            for index in range(self.slots):
                if self._slot(index)[0]:
                    self._free(index)

    def armed(self) -> list[ArmedFault]:
        """Every fault still armed, oldest first."""
        found = []
        with self._locked():
            for index in range(self.slots):
                fault_id, _, hits, length = self._slot(index)
                if fault_id:
                    start = self._offset(index) + _SLOT.size
                    body = json.loads(self._map[start : start + length])
                    found.append(ArmedFault(fault_id, body, hits))
        return sorted(found, key=lambda fault: fault.id)

    def claim(self, index: int, fault_id: int) -> int | None:
        """``SharedHits.claim`` of the fault in slot ``index``."""
        with self._locked():
            slot_id, times, hits, length = self._slot(index)
            if slot_id != fault_id:
                return None
            hits += 1
            if 0 <= times <= hits:
                self._free(index)  # spent: the other workers drop it at their next look
            else:
                _SLOT.pack_into(self._map, self._offset(index), slot_id, times, hits, length)
            return hits

    def hits(self, index: int, fault_id: int) -> int | None:
        """``SharedHits.hits`` of the fault in slot ``index``."""
        with self._locked():
            slot_id, _, hits, _ = self._slot(index)
        return hits if slot_id == fault_id else None


@dataclass(frozen=True, slots=True)
class SharedHits:
    """One fault's count in the table (a ``mailsrv.faults.SharedCount``)."""

    table: SharedFaultTable
    index: int
    fault_id: int

    def claim(self) -> int | None:
        return self.table.claim(self.index, self.fault_id)

    def hits(self) -> int | None:
        return self.table.hits(self.index, self.fault_id)
