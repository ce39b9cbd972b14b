"""The quota lock of one user, held across processes from the check until the save is done.

Two processes (``serve --workers``, ``mailsrv deliver``, a second host on the same root) saving
for one user at the same moment would otherwise both pass on the same free room. The lock is
an ``flock`` on ``mailsrv-quota.lock`` in the user's root: it excludes every other open of the
file (other processes, other servers of this process), goes with the holder when it dies (no
stale lock to judge), and Linux's NFS client carries it to the server as a POSIX lock, so it
holds across hosts too. It is taken without blocking a thread: tried, then tried again after a
short sleep, up to ``WAIT_SECONDS``.

Only users with a quota take it: a save without limits neither waits nor touches the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from pathlib import Path

from mailsrv.store.base import StoreBusy

LOCK_NAME = "mailsrv-quota.lock"
#: Seconds to wait for another process's save before giving up (a temporary failure).
WAIT_SECONDS = 30.0


class QuotaFileLock:
    """A held quota lock; ``release`` it once the save is committed."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    async def acquire(cls, path: Path, wait: float = WAIT_SECONDS) -> QuotaFileLock:
        """Take the lock on ``path`` (made if missing); ``StoreBusy`` after ``wait`` seconds."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + wait
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return cls(fd)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreBusy("the quota is held by another save") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.02)
        except BaseException:
            os.close(fd)
            raise

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
