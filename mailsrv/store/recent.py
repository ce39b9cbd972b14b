"""``mailsrv-recent``: who saw a folder's messages first (``\\Recent``, RFC 3501 §2.3.2).

A message is recent in exactly one session: the first that selects the folder (or idles on it)
after the message arrived. Every process on the root has to agree on that, and a restart must
not make old mail recent again, so the claim lives in the folder, beside ``dovecot-uidlist``:
one line of fixed width (``mailsrv-recent 1 V<uidvalidity> U<highest claimed UID>``, both ten
digits), read and rewritten in place under an ``flock`` on the file itself. The lock excludes
every other open of the file, in this process or another (and Linux's NFS client carries it to
the server), and is held for one ``pread`` and one ``pwrite``.

- **Never backwards.** A claim only raises the UID; a claim for another UIDVALIDITY (the folder
  was made afresh or repaired) starts the file again at that UIDVALIDITY.
- **Missing or damaged** reads as 0: every message is recent once more, as after a restart of a
  server that keeps the claim in memory. The file is not fsynced; a crash may lose the last
  claims in the same way.
- **From memory when it can be.** A watermark once read is a lower bound for ever (it never
  goes back), so a claim up to a UID at or below the highest value this process has seen needs
  no file at all: nothing up to there is recent for the caller. When a delivery reaches ten
  thousand idlers of one folder, the first view claims the new UID in the file and the others
  are answered from memory. Only a UID above what this process knows reads the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from pathlib import Path

RECENT_FILE = "mailsrv-recent"
_LINE = b"mailsrv-recent 1 V%010d U%010d\n"
_PATTERN = re.compile(rb"mailsrv-recent 1 V(\d{10}) U(\d{10})\n")
_SIZE = len(_LINE % (0, 0))

log = logging.getLogger(__name__)


def parse(data: bytes) -> tuple[int, int]:
    """(uidvalidity, highest claimed UID) of the file's bytes; (0, 0) when damaged."""
    m = _PATTERN.fullmatch(data)
    if m is None:
        return 0, 0
    return int(m[1]), int(m[2])


class RecentMark:
    """One folder's claim watermark, as this process last knew it (``claim`` reads the file)."""

    __slots__ = ("_known", "path", "uidvalidity")

    def __init__(self, folder: Path) -> None:
        self.path = folder / RECENT_FILE
        self.uidvalidity = 0
        self._known = 0  # a watermark of ``uidvalidity`` read or written: the file is at least this

    @property
    def known(self) -> int:
        return self._known

    def claim(self, uidvalidity: int, top_uid: int, *, readonly: bool) -> int:
        """Claim every UID up to ``top_uid`` (``readonly``: only look); returns the watermark
        before the claim: the caller's UIDs above it (up to ``top_uid``) are recent for it.
        Blocking, but one small file operation at most."""
        if uidvalidity == self.uidvalidity and top_uid <= self._known:
            return self._known  # claimed before, by this process or another: nothing new
        try:
            file_uidvalidity, mark = self._exchange(uidvalidity, top_uid, readonly=readonly)
        except OSError as e:
            log.warning("%s: %s; recent state kept in memory only", self.path, e)
            file_uidvalidity, mark = self.uidvalidity, self._known
        previous = mark if file_uidvalidity == uidvalidity else 0
        if uidvalidity != self.uidvalidity:
            self.uidvalidity, self._known = uidvalidity, 0
        after = previous if readonly else max(previous, top_uid)
        self._known = max(self._known, after)
        return previous

    def _exchange(self, uidvalidity: int, top_uid: int, *, readonly: bool) -> tuple[int, int]:
        """The file's (uidvalidity, watermark), raised to ``top_uid`` unless ``readonly``."""
        flags = os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT
        try:
            fd = os.open(self.path, flags | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            if readonly:
                return 0, 0  # nobody claimed anything yet
            raise  # the folder itself is gone
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if readonly else fcntl.LOCK_EX)
            data = os.pread(fd, _SIZE + 1, 0)
            found = parse(data)
            file_uidvalidity, mark = found
            if readonly:
                return found
            if file_uidvalidity == uidvalidity and mark >= top_uid:
                return found  # another process claimed them already
            os.pwrite(fd, _LINE % (uidvalidity, top_uid), 0)
            if len(data) > _SIZE:
                os.ftruncate(fd, _SIZE)  # a damaged file longer than the line
            return found
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
