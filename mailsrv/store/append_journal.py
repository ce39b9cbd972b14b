"""All-or-nothing delivery of several messages into one folder (IMAP MULTIAPPEND, RFC 3502).

Each message is written and fsynced in ``tmp/`` first; then, with the folder's dot-lock held, a
journal naming every final file is written (and fsynced) in ``tmp/``, the files are renamed into
``new/``/``cur/``, their uidlist records are appended in one write, and the journal is removed.

A process that dies between the first rename and the uidlist write leaves files without UIDs and
the journal. Whoever next gives UIDs to such files (``FolderIndex.assign_locked``, dot-lock held)
first calls ``roll_back``: the journal's files that have no uidlist record are removed, so the
set is either wholly there (the uidlist write happened) or not at all. Journal names start with a
dot, which Maildir readers skip, and a journal is never older than the lock that covered it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Container
from pathlib import Path

from mailsrv.store.fileio import write_all

#: Journal files in tmp/: ``.mailsrv-append.<random>``.
JOURNAL_PREFIX = ".mailsrv-append."


def write_journal(folder: Path, names: list[tuple[str, str]]) -> Path:
    """Record ``(sub, file name)`` pairs about to be renamed into place; fsynced."""
    path = folder / "tmp" / f"{JOURNAL_PREFIX}{uuid.uuid4().hex}"
    data = "".join(f"{sub}/{fname}\n" for sub, fname in names).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def finish(journal: Path) -> None:
    """The set is recorded in the uidlist: the journal is no longer needed."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal)


def roll_back(folder: Path, recorded: Container[str]) -> set[str]:
    """Undo interrupted multi-message deliveries (dot-lock held): remove each journal's files
    whose base name ``recorded`` does not hold, then the journal. Returns the removed bases."""
    removed: set[str] = set()
    try:
        journals = [n for n in os.listdir(folder / "tmp") if n.startswith(JOURNAL_PREFIX)]
    except FileNotFoundError:
        return removed
    for name in journals:
        journal = folder / "tmp" / name
        try:
            lines = journal.read_bytes().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            sub, _, fname = line.partition("/")
            base = fname.partition(":")[0]
            if sub not in ("new", "cur") or not base or "/" in fname or base in recorded:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / sub / fname)
                removed.add(base)
        finish(journal)
    return removed
