"""Which thread each message of a user is in, decided once and kept (RFC 8474 §5.2 THREADID).

A thread is named by its *seed*: the Message-ID that started it. A message is linked by its own
Message-ID (or, lacking one, its GUID) and its parents (References, else In-Reply-To, oldest
first). The first time a message is asked about, it joins the thread of its own id if that is
known (a copy, or a message another one referred to before it came), else that of its oldest
known parent, else it starts a thread seeded by its oldest parent (or its own id); every id of
it not known yet is then recorded in that thread. An id, once recorded, never moves, so:

- a message's thread never changes (§5.2: the THREADID of a message must not change), not when
  the message that started the thread is expunged (the ids stay), nor when a later message
  refers to two threads (it joins the first; the two are not merged);
- copies and moves share it (same header, same own id; same GUID without a Message-ID), and
  so do the user's folders: a reply in Sent is in the thread of the message in INBOX.

One user's table is an append-only file of ours, ``mailsrv-threads`` in the user's root (next
to INBOX's ``dovecot-uidlist``; Dovecot has no such file), a line per recorded id:
``<id>`` when the id seeds its own thread, else ``<id> <seed>``. Every process reads what the
others appended (from the offset it read up to) and appends under the INBOX's dot-lock; the
first line for an id wins. Ids with blanks or over ``MAX_ID`` characters are written as a hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from mailsrv.store.fileio import write_all
from mailsrv.store.uidlist import DotLock

THREADS_FILE = "mailsrv-threads"
#: Longer ids are recorded as a hash (a References id can be long; lines stay short).
MAX_ID = 250
#: ``(own id, parents oldest first)`` of one message; own id "guid:<GUID>" without Message-ID.
Links = tuple[str, tuple[str, ...]]


def _token(ident: str) -> str:
    if len(ident) <= MAX_ID and ident.isprintable() and " " not in ident and ident[:1] != "#":
        return ident
    return (
        "#" + hashlib.blake2b(ident.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
    )


class ThreadTable:
    """One user's id -> seed table, in memory and (with a ``root``) in ``mailsrv-threads``."""

    __slots__ = ("_offset", "_path", "_reading", "_root", "_stamp", "seeds")

    def __init__(self, root: Path | None) -> None:
        self._root = root
        self._path = None if root is None else root / THREADS_FILE
        self.seeds: dict[str, str] = {}
        self._offset = 0  # bytes of the file read so far (whole lines)
        self._stamp: tuple[int, int] | None = None  # (inode, size) when last read
        self._reading = threading.Lock()  # the loop and a writer thread may both read on

    def known(self, links: Sequence[Links]) -> list[str] | None:
        """Each message's seed if every one is recorded already (nothing to write), else None."""
        self.sync()
        seeds = self.seeds
        out: list[str] = []
        for own, _ in links:
            seed = seeds.get(_token(own))
            if seed is None:
                return None
            out.append(seed)
        return out

    def assign(self, links: Sequence[Links]) -> list[str]:
        """Each message's seed, recording the new ones (blocking: takes the dot-lock)."""
        if self._root is None:
            return self._decide(links)[0]
        with DotLock(self._root):
            self.sync()
            out, lines = self._decide(links)
            if lines:
                try:
                    self._append(lines)
                except BaseException:  # not recorded: not decided either (another may decide)
                    for line in lines:
                        self.seeds.pop(line.partition(" ")[0], None)
                    raise
        return out

    def _decide(self, links: Sequence[Links]) -> tuple[list[str], list[str]]:
        seeds = self.seeds
        out: list[str] = []
        lines: list[str] = []
        for own, parents in links:
            ids = [_token(own), *(_token(p) for p in parents)]
            seed = seeds.get(ids[0])
            if seed is None:
                seed = next((seeds[i] for i in ids[1:] if i in seeds), None)
            if seed is None:
                seed = ids[1] if len(ids) > 1 else ids[0]
            for ident in ids:
                if ident not in seeds:
                    seeds[ident] = seed
                    lines.append(ident if ident == seed else f"{ident} {seed}")
            out.append(seed)
        return out, lines

    def sync(self) -> None:
        """Take in what other processes appended since the last look (one ``stat``)."""
        if self._path is None:
            return
        with self._reading:
            self._read_new(self._path)

    def _read_new(self, path: Path) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if self._stamp is not None:  # removed (the user was): what we knew went with it
                self.seeds.clear()
                self._offset, self._stamp = 0, None
            return
        stamp = (st.st_ino, st.st_size)
        if stamp == self._stamp:
            return
        if self._stamp is None or st.st_ino != self._stamp[0] or st.st_size < self._offset:
            self.seeds.clear()  # a new file: read it from the start
            self._offset = 0
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
            end = data.rfind(b"\n") + 1  # an unfinished last line is read once it is whole
            self._offset += end
            self._stamp = (st.st_ino, self._offset) if end < len(data) else stamp
            self._parse(data[:end].decode("utf-8", "replace"))

    def _parse(self, text: str) -> None:
        seeds = self.seeds
        for line in text.splitlines():
            ident, _, seed = line.partition(" ")
            if ident and ident not in seeds:
                seeds[ident] = seed or ident

    def _append(self, lines: list[str]) -> None:
        if self._path is None:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            write_all(fd, data)
            os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        with self._reading:
            if start == self._offset:  # nothing unread before our lines: they are read
                self._offset = st.st_size
                self._stamp = (st.st_ino, st.st_size)


class ThreadTables:
    """The tables of the users this process has asked about (one per user root)."""

    __slots__ = ("_tables",)

    def __init__(self) -> None:
        self._tables: dict[str, ThreadTable] = {}

    def of(self, user: str, root: Path | None) -> ThreadTable:
        table = self._tables.get(user)
        if table is None:
            table = self._tables[user] = ThreadTable(root)
        return table

    def forget(self, user: str) -> None:
        self._tables.pop(user, None)
