"""Blocking changes to one folder: deliver, flags, expunge, copy/move, new UIDVALIDITY.

Each function runs with the folder's asyncio lock held (``maildir.py`` and ``mailbox.py``
decide whether in a thread) and takes the dot-lock itself where UIDs or keywords are handed
out. A message file that vanished under us (renamed by another process) is reported back as
"retry": the caller re-scans the folder and tries those once more.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mailsrv.store import append_journal
from mailsrv.store.base import SYSTEM_FLAGS, FlagMode, MessageInfo, apply_flags
from mailsrv.store.fileio import write_all
from mailsrv.store.filenames import base_of, cur_name, new_base, size_fields
from mailsrv.store.folder import FolderIndex
from mailsrv.store.scan import Entry, file_stamp
from mailsrv.store.uidlist import (
    UIDLIST_FILE,
    DotLock,
    Record,
    UidList,
    append_records,
    guid_field,
    new_guid,
    next_uidvalidity,
    write_uidlist,
)

#: Rewrite the uidlist instead of appending once this many of its records are for gone files.
STALE_RECORDS = 1000
#: Below this size the uidlist is rewritten whole (header exact); above, new records are appended
#: (Dovecot does the same; readers take the next UID as max(N, last UID + 1)). 0: always append.
#: A rewrite per delivery is a new inode and a freed one, and on ext4 every create gets slower
#: with the number of recently freed inodes: appending made deliveries about 1.4x faster.
APPEND_FROM = 0


@dataclass(frozen=True, slots=True)
class NewFile:
    base: str
    sub: str
    fname: str
    size: int
    date: float
    #: The GUID of the message this file is a copy of (``G`` field, as Dovecot writes it); ""
    #: for a new message, whose base name is its GUID
    guid: str = ""


def storable(flags: Iterable[str]) -> frozenset[str]:
    """System flags and keywords; other backslash flags (``\\Recent``) are never stored."""
    return frozenset(f for f in flags if f in SYSTEM_FLAGS or (f and not f.startswith("\\")))


def catch_up_locked(index: FolderIndex) -> bool:
    """With the dot-lock held: integrate others' uidlist changes before we add to it."""
    ul, _ = index.uidlist_state()
    if index.loaded and ul.uidvalidity > 0 and not ul.damaged and not index.uidlist_changed():
        return False
    scan = index.scan()
    if scan.needs_lock:
        index.assign_locked(scan)
    return index.apply(scan)


def commit_locked(index: FolderIndex, files: list[NewFile]) -> list[Entry]:
    """Give UIDs to files just placed in new/ or cur/ and record them (dot-lock held)."""
    ul, stamp = index.uidlist_state()
    added: list[tuple[str, Record]] = []
    entries: list[Entry] = []
    for f in files:
        uid = ul.next_free()
        rec = Record(uid, guid_field(f.guid) if f.guid else "")
        ul.records[f.base] = rec
        ul.next_uid = uid + 1
        ul.max_uid = max(ul.max_uid, uid)
        added.append((f.base, rec))
        letters = f.fname.partition(":2,")[2]
        flags = index.keywords.flags(letters)
        info = MessageInfo(uid, f.base, flags, f.size, f.date, guid=f.guid)
        entries.append(Entry(f.base, f.sub, f.fname, letters, info))
    for e in entries:
        index.add_entry(e)
    prune = len(ul.records) - len(index.by_base) > STALE_RECORDS
    if prune:
        # Listed now, under the lock: a record whose file is not here is an expunged message.
        on_disk = {base_of(n) for sub in ("new", "cur") for n in os.listdir(index.path / sub)}
        ul.records = {b: r for b, r in ul.records.items() if b in on_disk}
    if prune or stamp is None or stamp[1] < APPEND_FROM:
        write_uidlist(index.path, ul)
        stamp = file_stamp(index.path / UIDLIST_FILE)
    else:
        stamp = append_records(index.path, added)
    index.set_uidlist_state(ul, stamp)
    index.settle_locked()
    index.touch()
    return [index.by_uid.get(e.info.uid, e) for e in entries]


def _ensure_keywords_locked(index: FolderIndex, flags: Iterable[str]) -> None:
    index.keywords.load()
    missing = index.keywords.missing(flags)
    if missing:
        index.keywords.add(missing)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to deliver: wire bytes, stored flags, internal date (None: now)."""

    wire: bytes
    flags: frozenset[str]
    date: float | None = None


def deliver(index: FolderIndex, wire: bytes, flags: frozenset[str], date: float | None) -> Entry:
    """Write to tmp/, fsync, then rename into new/ (or cur/ with flags) and give it a UID."""
    return deliver_one(index, Delivery(wire, flags, date))


def deliver_one(index: FolderIndex, job: Delivery) -> Entry:
    """``deliver`` of a ``Delivery``; raises what went wrong."""
    (out,) = deliver_many(index, [job])
    if isinstance(out, Exception):
        raise out
    return out


def deliver_many(index: FolderIndex, jobs: list[Delivery]) -> list[Entry | OSError]:
    """``deliver`` for several messages: each file is written and fsynced in tmp/ on its own,
    then all are renamed into place and recorded under one dot-lock with one uidlist append.

    A message whose file could not be written or renamed gets its ``OSError`` back, the others
    still go in. A failure of the lock or the uidlist is raised for all of them (a renamed file
    without a uidlist record gets its UID from the next scan, like one Dovecot left there).
    """
    folder = str(index.path)
    written: list[tuple[int, NewFile, str]] = []  # (job index, file, tmp path)
    out: dict[int, Entry | OSError] = {}
    for n, job in enumerate(jobs):
        try:
            new, tmp = _write_tmp(folder, job)
        except OSError as exc:
            out[n] = exc
            continue
        written.append((n, new, tmp))
    placed: set[str] = set()
    try:
        if not written:
            return [out[n] for n in range(len(jobs))]
        with DotLock(index.path):
            catch_up_locked(index)
            _ensure_keywords_locked(index, {f for job in jobs for f in job.flags})
            files: list[NewFile] = []
            done: list[int] = []
            with index.own_change():
                for n, new, tmp in written:
                    flags = jobs[n].flags
                    letters = index.keywords.letters(flags)
                    sub, fname = (
                        ("cur", cur_name(new.base, letters)) if flags else ("new", new.base)
                    )
                    try:
                        os.rename(tmp, os.path.join(folder, sub, fname))
                    except OSError as exc:
                        out[n] = exc
                        continue
                    placed.add(tmp)
                    done.append(n)
                    files.append(NewFile(new.base, sub, fname, new.size, new.date))
            entries = commit_locked(index, files) if files else []
        for n, entry in zip(done, entries, strict=True):
            out[n] = entry
        return [out[n] for n in range(len(jobs))]
    finally:
        for _, _, tmp in written:
            if tmp not in placed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)


def deliver_all(index: FolderIndex, jobs: list[Delivery]) -> list[Entry]:
    """Deliver every message or none (RFC 3502 MULTIAPPEND): all are written and fsynced in
    tmp/ first, then renamed into place and recorded under one dot-lock, with a journal that
    lets the next writer undo a set a crash left half renamed (``append_journal``)."""
    folder = str(index.path)
    written: list[tuple[NewFile, str]] = []
    placed: list[str] = []
    try:
        for job in jobs:
            written.append(_write_tmp(folder, job))
        with DotLock(index.path):
            catch_up_locked(index)
            _ensure_keywords_locked(index, {f for job in jobs for f in job.flags})
            files: list[NewFile] = []
            for job, (new, _) in zip(jobs, written, strict=True):
                letters = index.keywords.letters(job.flags)
                sub, fname = (
                    ("cur", cur_name(new.base, letters)) if job.flags else ("new", new.base)
                )
                files.append(NewFile(new.base, sub, fname, new.size, new.date))
            journal = append_journal.write_journal(index.path, [(f.sub, f.fname) for f in files])
            try:
                with index.own_change():
                    for f, (_, tmp) in zip(files, written, strict=True):
                        target = os.path.join(folder, f.sub, f.fname)
                        os.rename(tmp, target)
                        placed.append(target)
                    entries = commit_locked(index, files)
                placed.clear()  # recorded: the set is in
            finally:
                for target in placed:  # a rename or the uidlist failed: take the set back
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target)
                append_journal.finish(journal)
        return entries
    finally:
        for _, tmp in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _write_tmp(folder: str, job: Delivery) -> tuple[NewFile, str]:
    """The message in tmp/, its date set and fsynced: whole on disk before any rename."""
    wire = job.wire
    when = time.time() if job.date is None else job.date
    base = new_base(len(wire), len(wire), when)
    tmp = os.path.join(folder, "tmp", base)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            write_all(fd, wire)
            os.utime(fd, (when, when))  # Dovecot takes the internal date from the mtime
            os.fsync(fd)  # content and date are on disk before the name in new/ can be
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return NewFile(base, "", "", len(wire), when), tmp


def store_flags(
    index: FolderIndex, uids: Iterable[int], flags: frozenset[str], mode: FlagMode
) -> tuple[list[MessageInfo], list[int], list[int]]:
    """Rename files to their new info letters; returns (infos, changed uids, retry uids)."""
    if mode is not FlagMode.REMOVE and index.keywords.missing(flags):
        with DotLock(index.path):
            _ensure_keywords_locked(index, flags)
    with index.own_change():
        return _rename_flags(index, uids, flags, mode)


def _rename_flags(
    index: FolderIndex, uids: Iterable[int], flags: frozenset[str], mode: FlagMode
) -> tuple[list[MessageInfo], list[int], list[int]]:
    out: list[MessageInfo] = []
    changed: list[int] = []
    retry: list[int] = []
    for uid in sorted(set(uids)):
        e = index.by_uid.get(uid)
        if e is None:
            continue
        letters = index.keywords.letters(apply_flags(e.info.flags, flags, mode), keep=e.letters)
        if letters == e.letters and (e.sub == "cur" or not letters):
            out.append(e.info)
            continue
        fname = cur_name(e.base, letters)
        folder = str(index.path)
        try:
            os.rename(f"{folder}/{e.sub}/{e.fname}", f"{folder}/cur/{fname}")
        except FileNotFoundError:
            retry.append(uid)
            continue
        info = e.info
        info = MessageInfo(
            uid,
            e.base,
            index.keywords.flags(letters),
            info.size,
            info.internal_date,
            guid=info.guid,
        )
        index.add_entry(Entry(e.base, "cur", fname, letters, info))
        out.append(info)
        if info.flags != e.info.flags:
            changed.append(uid)
    if out:
        index.touch()
    return out, changed, retry


def expunge(index: FolderIndex, uids: Iterable[int]) -> tuple[list[Entry], list[int]]:
    """Unlink; returns (entries removed, retry uids)."""
    removed: list[Entry] = []
    retry: list[int] = []
    with index.own_change():
        for uid in sorted(set(uids)):
            e = index.by_uid.get(uid)
            if e is None:
                continue
            try:
                os.unlink(index.file_path(e))
            except FileNotFoundError:
                retry.append(uid)
                continue
            index.drop_entry(uid)
            removed.append(e)
    if removed:
        index.touch()
    return removed, retry


def _link_or_copy(src: Path, target: Path, tmp_dir: Path) -> None:
    try:
        os.link(src, target)
        return
    except FileNotFoundError:
        raise
    except OSError:
        pass  # another file system, or links not allowed: copy
    data = src.read_bytes()
    tmp = tmp_dir / target.name.partition(":")[0]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, target)


def transfer(
    src: FolderIndex, dst: FolderIndex, uids: Iterable[int], move: bool
) -> tuple[list[tuple[int, int, str, str]], list[int]]:
    """Copy (hard link) or move (rename) messages, flags kept, into ``dst``. Each new file
    has a new base name and keeps the message's GUID in its record's ``G`` field, as Dovecot
    does when it cannot keep the name: the EMAILID (RFC 8474 §5.1) survives COPY and MOVE.

    Returns ((source uid, destination uid, source base, destination base) ..., retry uids).
    """
    entries = [src.by_uid[u] for u in sorted(set(uids)) if u in src.by_uid]
    pairs: list[tuple[int, int, str, str]] = []
    retry: list[int] = []
    if not entries:
        return pairs, retry
    with DotLock(dst.path):
        catch_up_locked(dst)
        _ensure_keywords_locked(dst, {f for e in entries for f in e.info.flags})
        files: list[NewFile] = []
        moved: list[Entry] = []
        with src.own_change(), dst.own_change():
            _place(src, dst, entries, move, files, moved, retry)
        if move:
            for e in moved:
                src.drop_entry(e.info.uid)
            src.touch()
        new = commit_locked(dst, files) if files else []
    for e, n in zip(moved, new, strict=True):
        pairs.append((e.info.uid, n.info.uid, e.base, n.base))
    return pairs, retry


def _place(
    src: FolderIndex,
    dst: FolderIndex,
    entries: list[Entry],
    move: bool,
    files: list[NewFile],
    moved: list[Entry],
    retry: list[int],
) -> None:
    """Link or rename each message into ``dst``'s cur/ under a new base name."""
    for e in entries:
        size = size_fields(e.base)[0]
        if size is None:
            try:
                size = os.stat(src.file_path(e)).st_size
            except FileNotFoundError:
                retry.append(e.info.uid)
                continue
        base = new_base(size, e.info.size, e.info.internal_date)
        letters = dst.keywords.letters(e.info.flags, keep="P" if "P" in e.letters else "")
        fname = cur_name(base, letters)
        try:
            if move:
                os.rename(src.file_path(e), dst.path / "cur" / fname)
            else:
                _link_or_copy(src.file_path(e), dst.path / "cur" / fname, dst.path / "tmp")
        except FileNotFoundError:
            retry.append(e.info.uid)
            continue
        info = e.info
        files.append(NewFile(base, "cur", fname, info.size, info.internal_date, info.message_guid))
        moved.append(e)


def bump_uidvalidity(index: FolderIndex) -> int:
    """A new UIDVALIDITY with UIDs from 1 in the current order, as if the list had been lost."""
    with DotLock(index.path):
        scan = index.scan()
        if scan.needs_lock:
            index.assign_locked(scan)
        old = scan.uidlist
        present = sorted((r.uid, b) for b, r in old.records.items() if b in scan.disk)
        ul = UidList(
            uidvalidity=next_uidvalidity(index.user_root, max(old.uidvalidity, index.uidvalidity)),
            guid=new_guid(),
        )
        for n, (_, base) in enumerate(present, start=1):
            ul.records[base] = Record(n, old.records[base].fields)
            ul.max_uid = n
        ul.next_uid = len(present) + 1
        write_uidlist(index.path, ul)
        scan.uidlist, scan.ul_stamp = ul, file_stamp(index.path / UIDLIST_FILE)
        index.apply(scan)
        index.settle_locked()
        index.touch()
        return ul.uidvalidity
