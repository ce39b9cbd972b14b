"""CPU seconds and memory of a server's whole process tree, read from /proc.

CPU is utime+stime (+ cutime+cstime, so workers that exited and were reaped by their parent
still count) summed over the tree; Dovecot's imap/pop3 workers are children of its master, and
mailsrv is one process. Memory is VmRSS summed over the tree, sampled by a thread; for the
per-connection figure PSS (smaps_rollup) is used so shared pages are not counted twice.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """``root`` and every descendant alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(root: int) -> float:
    """CPU time of the tree so far (self and reaped children)."""
    ticks = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # fields[11:15] are utime, stime, cutime, cstime (proc(5) fields 14-17).
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / _TICK


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(root: int) -> int:
    return sum(_status_kb(pid, "VmRSS:") for pid in tree_pids(root)) * 1024


def hwm_bytes(root: int) -> int:
    """Sum of each process's VmHWM (peak RSS); an upper bound of the tree's peak."""
    return sum(_status_kb(pid, "VmHWM:") for pid in tree_pids(root)) * 1024


def pss_bytes(root: int) -> int:
    total = 0
    for pid in tree_pids(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total


class RssSampler:
    """Samples the tree's RSS every ``interval`` seconds in a thread; ``peak`` is the maximum."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.root))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.root))


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connection_owners(pids: list[int], port: int) -> dict[int, int]:
    """The established TCP connections to local ``port``: peer port -> index in ``pids`` of
    the process holding the socket.

    Which worker accepted a connection shows only in which process owns its socket: the
    sockets of /proc/net/tcp (and tcp6) are matched to each process's descriptors by inode.
    """
    peer_of: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # "ADDR:PORT" in hex, state 01 = ESTABLISHED, the inode is the 10th field.
            if fields[3] == "01" and int(fields[1].rpartition(":")[2], 16) == port:
                peer_of[int(fields[9])] = int(fields[2].rpartition(":")[2], 16)
    owners: dict[int, int] = {}
    for index, pid in enumerate(pids):
        for inode in _socket_inodes(pid) & peer_of.keys():
            owners[peer_of[inode]] = index
    return owners
