"""``mailsrv-modseq``: a folder's mod-sequences (RFC 7162 CONDSTORE/QRESYNC), shared on disk.

One file of ours beside ``dovecot-uidlist`` (Dovecot's own files are never written); a log of
lines appended under the uidlist's dot-lock::

    mailsrv-modseq 1 V1700000000 B1733230000000000 E0
    1 1733230000000000 :S
    2 1733230000000001 :FS
    3 1733230000000002 -

The header names the UIDVALIDITY the log belongs to (V), the value it started from (B) and the
highest mod-sequence of expunges it no longer remembers (E; VANISHED below it is answered from
the UIDs that are missing). Each line says: from this mod-sequence on, the message with this
UID has these info letters (``:<letters>``) or is expunged (``-``). The last line of a UID wins.

A change gets ``highest + 1``, computed under the dot-lock after reading what other processes
appended, so every process on the root sees one increasing sequence. A process that finds a
message whose letters on disk are not those of its last line (another program renamed it, or we
were killed between the rename and the append) gives it a new mod-sequence itself.

Never backwards: a log made afresh (first use, deleted, UIDVALIDITY changed) starts at the clock
in microseconds, and at least one above what this process last knew. A change takes far more
than a microsecond, so a log started now lies above any value a lost one reached, as long as the
clock is not set back by more than the log's age.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from mailsrv.store.fileio import write_all

MODSEQ_FILE = "mailsrv-modseq"
_MAGIC = "mailsrv-modseq 1"
#: Expunge records kept when the log is compacted; older ones only raise ``E``.
KEEP_EXPUNGED = 10_000
#: Compact once the log has this many more lines than it needs (live messages + kept expunges).
SLACK_LINES = 20_000

Change = tuple[int, str | None]  # (uid, info letters now, or None: expunged)


def clock_floor() -> int:
    """The mod-sequence a fresh log starts from: now, in microseconds."""
    return time.time_ns() // 1000


class ModseqLog:
    """One folder's log as this process knows it; blocking I/O, callers hold the index lock."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MODSEQ_FILE
        self.uidvalidity = 0
        self.base = 0
        self.forgotten = 0  # E: expunges up to this mod-sequence are not listed any more
        self.highest = 0
        #: uid -> (mod-sequence, letters) of live messages
        self.live: dict[int, tuple[int, str]] = {}
        #: (mod-sequence, uid) of expunges, in log order (ascending mod-sequence)
        self.expunged: list[tuple[int, int]] = []
        self._lines = 0
        self._ino = 0
        self._offset = 0  # bytes of the file read so far (whole lines only)
        self._fd: int | None = None  # open for appending, on inode ``_fd_ino``
        self._fd_ino = 0

    # -- reading ----------------------------------------------------------------------------

    def sync(self) -> bool:
        """Read what was appended (or everything, if the file was replaced); True if the file
        is there and belongs to a UIDVALIDITY (false: it must be made afresh). One ``stat``
        when nothing changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._ino = 0
            return False
        if st.st_ino != self._ino or st.st_size < self._offset:
            self._forget()
            self._ino = st.st_ino
        if st.st_size > self._offset:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                self._ino = 0
                return False
            try:
                if os.fstat(fd).st_ino != self._ino:  # replaced since the stat: start over
                    self._forget()
                    self._ino = os.fstat(fd).st_ino
                os.lseek(fd, self._offset, os.SEEK_SET)
                chunks = []
                while chunk := os.read(fd, 1 << 20):
                    chunks.append(chunk)
                self._parse(b"".join(chunks))
            finally:
                os.close(fd)
        return self.uidvalidity > 0

    def close(self) -> None:
        """Close the file kept open for appending."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _forget(self) -> None:
        self.uidvalidity = self.base = self.forgotten = 0
        self.live = {}
        self.expunged = []
        self._lines = self._offset = 0

    def _parse(self, data: bytes) -> None:
        end = data.rfind(b"\n") + 1  # an unfinished last line is a writer still at it
        text = data[:end].decode("ascii", errors="replace")
        self._offset += end
        lines = text.split("\n")[:-1]
        if self._lines == 0 and lines:
            if not self._header(lines[0]):
                return  # unreadable: treated as missing until made afresh
            lines = lines[1:]
            self._lines = 1
        live, expunged = self.live, self.expunged
        highest = self.highest
        # One object per distinct value and letters: a folder's lines mostly share both.
        values: dict[str, int] = {}
        letters: dict[str, str] = {}
        for line in lines:
            parts = line.split(" ", 2)
            try:
                uid, text, what = int(parts[0]), parts[1], parts[2]
                value = values.get(text) or values.setdefault(text, int(text))
            except (ValueError, IndexError):
                continue  # damaged line: the disk check gives that message a new value
            if uid <= 0 or value <= 0:
                continue
            if what[:1] == ":":
                live[uid] = (value, letters.setdefault(what, what[1:]))
            elif what == "-":
                live.pop(uid, None)
                expunged.append((value, uid))
            else:
                continue
            if value > highest:
                highest = value
        self.highest = highest
        self._lines += len(lines)

    def _header(self, line: str) -> bool:
        if not line.startswith(_MAGIC + " "):
            return False
        for part in line[len(_MAGIC) + 1 :].split():
            key, value = part[:1], part[1:]
            if not value.isdigit():
                continue
            if key == "V":
                self.uidvalidity = int(value)
            elif key == "B":
                self.base = int(value)
            elif key == "E":
                self.forgotten = int(value)
            elif key == "H":
                self.highest = max(self.highest, int(value))
        self.highest = max(self.highest, self.base)
        return self.uidvalidity > 0

    # -- questions ----------------------------------------------------------------------------

    def modseq_of(self, uid: int, letters: str) -> int | None:
        """The message's mod-sequence if the log explains its current letters, else None."""
        rec = self.live.get(uid)
        if rec is None or rec[1] != letters:
            return None
        return rec[0]

    def vanished_since(self, modseq: int) -> list[int] | None:
        """UIDs expunged after ``modseq``, or None when the log no longer knows them all."""
        if modseq < self.forgotten:
            return None
        out = [uid for value, uid in reversed(self.expunged) if value > modseq]
        return sorted(set(out))

    # -- writing (the folder's dot-lock held) -----------------------------------------------

    def bump_locked(self, changes: Iterable[Change], *, synced: bool = False) -> int:
        """Give ``changes`` one new mod-sequence and append them; returns it (0: no change).
        ``synced``: the caller read the log under this same lock hold."""
        items = list(changes)
        if not items:
            return 0
        if not synced:
            self.sync()
        value = self.highest + 1
        lines = [
            f"{uid} {value} -\n" if letters is None else f"{uid} {value} :{letters}\n"
            for uid, letters in items
        ]
        data = "".join(lines).encode("ascii")
        fd = self._append_fd()
        write_all(fd, data)
        # We hold the lock and read the log just now: nobody wrote in between.
        self._offset += len(data)
        self._lines += len(lines)
        self.highest = value
        for uid, letters in items:
            if letters is None:
                self.live.pop(uid, None)
                self.expunged.append((value, uid))
            else:
                self.live[uid] = (value, letters)
        return value

    def _append_fd(self) -> int:
        """The log open for appending: the file ``sync`` read (reopened once it was replaced)."""
        if self._fd is not None and self._fd_ino == self._ino:
            return self._fd
        self.close()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        if os.fstat(fd).st_ino != self._ino:
            os.close(fd)
            raise FileNotFoundError(f"{self.path} was replaced under the lock")
        self._fd, self._fd_ino = fd, self._ino
        return fd

    def create_locked(self, uidvalidity: int, messages: dict[int, str]) -> None:
        """Make the log afresh for ``uidvalidity``: every message at the new base value."""
        base = max(clock_floor(), self.highest + 1)
        head = f"{_MAGIC} V{uidvalidity} B{base} E{base}\n"
        body = "".join(f"{uid} {base} :{letters}\n" for uid, letters in sorted(messages.items()))
        data = (head + body).encode("ascii")
        self._forget()
        self._ino = self._replace(data)
        # What was just written is what a read would find: no need to read it back.
        self.uidvalidity, self.base, self.forgotten, self.highest = uidvalidity, base, base, base
        self.live = {uid: (base, letters) for uid, letters in messages.items()}
        self._lines, self._offset = len(messages) + 1, len(data)

    def compact_locked(self) -> bool:
        """Rewrite the log with one line per live message and the newest expunges, when it has
        grown well past that; True when it did (the log was read under this lock hold)."""
        if self._lines <= len(self.live) + KEEP_EXPUNGED + SLACK_LINES:
            return False
        kept = self.expunged[-KEEP_EXPUNGED:]
        dropped = self.expunged[: len(self.expunged) - len(kept)]
        forgotten = max([self.forgotten, *(v for v, _ in dropped)])
        head = f"{_MAGIC} V{self.uidvalidity} B{self.base} E{forgotten} H{self.highest}\n"
        body = [f"{uid} {v} :{letters}\n" for uid, (v, letters) in sorted(self.live.items())]
        body += [f"{uid} {v} -\n" for v, uid in kept]
        self._replace((head + "".join(body)).encode("ascii"))
        self._forget()
        self.sync()
        return True

    def _replace(self, data: bytes) -> int:
        """Write the whole log anew (temporary file, fsync, rename); returns its inode."""
        tmp = self.path.with_name(f"{MODSEQ_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, data)
            os.fsync(fd)
            ino = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return ino
