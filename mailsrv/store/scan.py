"""What a look at a folder finds: ``Entry`` (one message), ``Scan`` (one listing), file stamps.

An entry is built from the file name alone whenever the name is standard
(``<secs>.M<usecs>P...,S=<n>,W=<n>``); other names fall back to the uidlist's ``W`` field for
the size and the file's mtime for the date, and only then to reading the file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailsrv.message.wire import to_wire
from mailsrv.store.base import MessageInfo
from mailsrv.store.filenames import letters_of, name_time, standard_name, wire_size
from mailsrv.store.keywords import Keywords
from mailsrv.store.uidlist import Record, UidList, guid_of

Stamp = tuple[int, int, int]  # (inode, size, mtime_ns)


@dataclass(slots=True)
class Entry:
    """One message as the index knows it."""

    base: str
    sub: str  # "new" or "cur"
    fname: str  # the file's name in ``sub``
    letters: str  # info letters after ":2,"
    info: MessageInfo


@dataclass(slots=True)
class Scan:
    """What one look at the disk found."""

    started: float
    dirs: tuple[int, int]  # mtime_ns of new/ and cur/
    disk: dict[str, tuple[str, str]]  # base -> (sub, file name)
    uidlist: UidList
    ul_stamp: Stamp | None
    unassigned: list[str] = field(default_factory=list)

    @property
    def needs_lock(self) -> bool:
        """Files without UIDs, or no usable uidlist: fixing that takes the dot-lock."""
        ul = self.uidlist
        return bool(self.unassigned) or ul.damaged or ul.uidvalidity <= 0


def file_stamp(path: Path | str) -> Stamp | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def measure(path: Path) -> int:
    """The wire size of a file whose name does not tell it (reads the file)."""
    try:
        return len(to_wire(path.read_bytes()))
    except FileNotFoundError:
        return 0


def make_entry(
    folder: Path,
    keywords: Keywords,
    base: str,
    sub: str,
    fname: str,
    rec: Record,
    modseqs: dict[int, tuple[int, str]] | None = None,
) -> Entry:
    """The entry of one file; its mod-sequence from ``modseqs`` (uid -> (modseq, letters),
    the folder's log) when the log's letters are the file's, else 0 (not known yet)."""
    letters = letters_of(fname)
    flags = keywords.flags(letters)
    modseq = 0
    if modseqs is not None:
        known = modseqs.get(rec.uid)
        if known is not None and known[1] == letters:
            modseq = known[0]
    guid = guid_of(rec.fields) if rec.fields else ""
    m = standard_name(base)
    if m is not None:  # the common case, ours and Dovecot's: one regex match
        when, size = m
        info = MessageInfo(rec.uid, base, flags, size, when, modseq, guid)
        return Entry(base, sub, fname, letters, info)
    path = folder / sub / fname
    size = _size(base, path, rec)
    info = MessageInfo(rec.uid, base, flags, size, _time(base, path), modseq, guid)
    return Entry(base, sub, fname, letters, info)


def _size(base: str, path: Path, rec: Record) -> int:
    size = wire_size(base)
    if size is not None:
        return size
    for f in rec.fields.split():
        if f.startswith("W") and f[1:].isdigit():
            return int(f[1:])
    return measure(path)


def _time(base: str, path: Path) -> float:
    when = name_time(base)
    if when is not None:
        return when
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return time.time()
