"""One folder's shared in-process index: UIDs, flags, sizes, kept in step with the disk.

How it stays cheap: the index remembers the mtimes of ``new/`` and ``cur/`` and the identity of
``dovecot-uidlist``. A check (at most every ``CHECK_INTERVAL`` seconds) stats those three; only
when one changed does it list the two directories (never a stat or read per file: sizes come
from ``,W=`` in names or ``W`` fields in the uidlist, dates from the names) and re-read the
uidlist, and only when the uidlist changed. Files nobody gave a UID yet get one under the
dot-lock, in the order of the timestamps in their names. A directory whose mtime is within
``STALE_WINDOW`` of the moment it was stated might change again within the same clock tick, so
it is listed again at the next check.

Every method here is blocking and must run with ``FolderIndex.lock`` (an asyncio lock) held;
the async layer (``indexes.py``, ``mailbox.py``, ``maildir.py``) decides what runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from mailsrv.store import append_journal
from mailsrv.store.base import MessageInfo, NoSuchFolder
from mailsrv.store.cache import CACHE_FILE, MessageCache
from mailsrv.store.filenames import letters_of, name_time, wire_size
from mailsrv.store.keywords import Keywords
from mailsrv.store.modseq import Change, ModseqLog
from mailsrv.store.recent import RecentMark
from mailsrv.store.scan import Entry, Scan, Stamp, file_stamp, make_entry, measure
from mailsrv.store.uidlist import (
    UIDLIST_FILE,
    DotLock,
    Record,
    UidList,
    append_records,
    new_guid,
    next_uidvalidity,
    parse_uidlist,
    write_uidlist,
)

log = logging.getLogger(__name__)

#: Least time between two looks at the disk for one folder (snapshots in between are free).
CHECK_INTERVAL = 0.075
#: A directory changed this recently may change again unseen in the same mtime tick.
STALE_WINDOW = 0.05
#: After adopting the mtimes of our own changes, one re-scan this much later catches anything
#: another process did in the same mtime tick.
VERIFY_DELAY = 2.0
#: Files in tmp/ older than this are left-overs of crashed deliveries (Maildir's 36 hours).
TMP_MAX_AGE = 36 * 3600
#: Folders with more messages than this are scanned in a thread, not on the event loop.
INLINE_LIMIT = 2000

_versions = itertools.count(1)


class FolderIndex:
    """The state of one folder shared by every handle on it in this process."""

    def __init__(
        self, user: str, name: str, path: Path, user_root: Path, cache_file: str = CACHE_FILE
    ) -> None:
        self.user = user
        self.user_root = user_root
        self.name = name
        self.path = path
        #: What ``changed_on_disk`` stats, as strings: no Path object per look (NOOP looks).
        self._looked_at = (f"{path}/new", f"{path}/cur", f"{path}/{UIDLIST_FILE}")
        self.lock = asyncio.Lock()
        self.keywords = Keywords(path)
        self.cache = MessageCache(path, cache_file)
        self.modseqs = ModseqLog(path)
        self.recent = RecentMark(path)  # who saw which message first (\\Recent)
        self._check: set[int] = set()  # messages added or changed: is their modseq known?
        self._dropped: set[int] = set()  # messages gone: is their expunge in the modseq log?
        self.uidvalidity = 0
        self.uidnext = 1
        self.guid = ""
        self.by_uid: dict[int, Entry] = {}
        self.by_base: dict[str, Entry] = {}
        self.version = next(_versions)
        self.dead = False
        self.loaded = False
        self._ul = UidList()
        self._ul_stamp: Stamp | None = None
        self._dirs: tuple[int, int] | None = None
        self._verify_at: float | None = None
        self._top_uid = 0  # highest UID in by_uid
        self._ordered = True  # by_uid iterates in UID order
        self._disk: dict[str, tuple[str, str]] = {}  # the last scan's files
        self._pending: set[str] = set()  # files that had no UID at the last scan
        self._touched: set[str] = set()  # base names we changed since the last scan
        self._stale = True
        self.checked_at = -1e9
        self._kw_stamp: object = None
        self._snapshot: tuple[int, tuple[MessageInfo, ...]] | None = None
        self._octets = 0  # the sizes in by_uid, kept as entries come and go (quota)

    # -- looking at the disk -------------------------------------------------------------

    def due(self) -> bool:
        return time.monotonic() - self.checked_at >= CHECK_INTERVAL

    def changed_on_disk(self) -> bool:
        """Three stats: did anything change since the last scan?"""
        if self._stale or not self.loaded:
            return True
        if self._verify_at is not None and time.monotonic() >= self._verify_at:
            return True
        return self._dir_mtimes() != self._dirs or self.uidlist_changed()

    def _dir_mtimes(self) -> tuple[int, int] | None:
        try:
            return (
                os.stat(self._looked_at[0]).st_mtime_ns,
                os.stat(self._looked_at[1]).st_mtime_ns,
            )
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def own_change(self) -> Iterator[None]:
        """Around a change of ours: if the folder was in step before, it still is after, so
        the directories' new mtimes are adopted instead of listing 100,000 names again."""
        before = self._dir_mtimes()
        try:
            yield
        finally:
            if before is not None and before == self._dirs and not self._stale:
                self._dirs = self._dir_mtimes()
                if self._verify_at is None:
                    self._verify_at = time.monotonic() + VERIFY_DELAY

    def scan(self) -> Scan:
        """List new/ and cur/, re-read the uidlist if it changed. Raises ``NoSuchFolder``."""
        started = time.time()
        try:
            dirs = (
                os.stat(self.path / "new").st_mtime_ns,
                os.stat(self.path / "cur").st_mtime_ns,
            )
            disk: dict[str, tuple[str, str]] = {}
            for sub in ("new", "cur"):
                disk.update(
                    {
                        f.partition(":")[0]: (sub, f)
                        for f in os.listdir(self.path / sub)
                        if f[0] != "."
                    }
                )
        except FileNotFoundError:
            raise NoSuchFolder(self.name) from None
        if not self.loaded:
            self._clean_tmp()
        ul, stamp = self._read_uidlist()
        scan = Scan(started, dirs, disk, ul, stamp)
        scan.unassigned = list(disk.keys() - ul.records.keys())
        return scan

    def _clean_tmp(self) -> None:
        """Remove what crashed deliveries left in tmp/ (the Maildir rule: after 36 hours).

        Age is the inode's change time, not its modification time: a delivery sets the file's
        mtime to the message's internal date (which may be years back) before the rename, and a
        process opening the folder at that moment must not take it for a left-over."""
        cutoff = time.time() - TMP_MAX_AGE
        with contextlib.suppress(FileNotFoundError), os.scandir(self.path / "tmp") as it:
            for entry in it:
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_file() and entry.stat().st_ctime < cutoff:
                        os.unlink(entry.path)

    def _read_uidlist(self) -> tuple[UidList, Stamp | None]:
        path = self.path / UIDLIST_FILE
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return UidList(), None
        try:
            # The stamp is taken before reading: content newer than it only causes a re-read.
            st = os.fstat(fd)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp == self._ul_stamp:
                return self._ul, stamp
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return parse_uidlist(b"".join(chunks).decode("utf-8", errors="replace")), stamp

    def assign(self, scan: Scan) -> None:
        """Give UIDs to files that have none, under the dot-lock (blocking)."""
        with DotLock(self.path):
            self.assign_locked(scan)

    def assign_locked(self, scan: Scan) -> None:
        self._ul_stamp = None  # someone may have written it: read it afresh
        scan.uidlist, scan.ul_stamp = self._read_uidlist()
        ul = scan.uidlist
        for base in append_journal.roll_back(self.path, ul.records):
            scan.disk.pop(base, None)
        scan.unassigned = list(scan.disk.keys() - ul.records.keys())
        rebuild = ul.damaged or ul.uidvalidity <= 0
        earlier = ul.records  # a rebuilt list keeps what records it could read (G fields)
        if rebuild:
            scan.uidlist = ul = self._rebuilt(ul)
            scan.unassigned = list(scan.disk)
        if not scan.unassigned and not rebuild:
            return
        added = self._give_uids(scan, scan.unassigned, earlier)
        if rebuild or scan.ul_stamp is None:
            write_uidlist(self.path, ul)
        else:
            append_records(self.path, added)
        scan.ul_stamp = file_stamp(self.path / UIDLIST_FILE)
        scan.unassigned = []

    def _rebuilt(self, old: UidList) -> UidList:
        fresh = UidList(
            uidvalidity=next_uidvalidity(self.user_root, max(old.uidvalidity, self.uidvalidity)),
            next_uid=max(old.next_free(), self.uidnext),
            guid=old.guid or new_guid(),
        )
        if old.damaged:
            log.warning(
                "folder %s of %s: dovecot-uidlist damaged; rebuilt with UIDVALIDITY %d",
                self.name,
                self.user,
                fresh.uidvalidity,
            )
        return fresh

    def _give_uids(
        self, scan: Scan, bases: list[str], earlier: dict[str, Record]
    ) -> list[tuple[str, Record]]:
        """New records for ``bases``, with the extension fields of their ``earlier`` records
        (a damaged list's) kept verbatim: a copy's ``G`` field is its EMAILID."""
        ul = scan.uidlist

        def order(base: str) -> tuple[float, str]:
            when = name_time(base)
            return (when if when is not None else float("inf"), base)

        added: list[tuple[str, Record]] = []
        for base in sorted(bases, key=order):
            uid = ul.next_free()
            prior = earlier.get(base)
            fields = prior.fields if prior is not None else ""
            if not fields and wire_size(base) is None:
                sub, fname = scan.disk[base]
                fields = f"W{measure(self.path / sub / fname)}"
            rec = Record(uid, fields)
            ul.records[base] = rec
            ul.next_uid = uid + 1
            ul.max_uid = max(ul.max_uid, uid)
            added.append((base, rec))
        return added

    def apply(self, scan: Scan) -> bool:
        """Make the index match the scan; True when it found changes not made by us."""
        ul = scan.uidlist
        kw_changed = self._reload_keywords()
        if not self.loaded or kw_changed or ul.uidvalidity != self.uidvalidity:
            changed = self._rebuild(scan)
        else:
            # Only names that differ from the last scan, or that we touched since, can differ.
            bases = {b for b, _ in scan.disk.items() ^ self._disk.items()}
            bases |= self._pending | self._touched
            changed = False
            for base in bases:
                changed |= self._reconcile(base, scan.disk.get(base), ul.records.get(base))
        self.uidvalidity, self.guid = ul.uidvalidity, ul.guid
        self.uidnext = ul.next_free()
        self._ul, self._ul_stamp = ul, scan.ul_stamp
        self._disk = scan.disk
        self._pending = set(scan.unassigned)
        self._touched = set()
        self._dirs = scan.dirs
        self._verify_at = None
        self._stale = any(scan.started * 1e9 - m < STALE_WINDOW * 1e9 for m in scan.dirs)
        self.loaded = True
        if changed:
            self.touch()
        return changed

    def _rebuild(self, scan: Scan) -> bool:
        records = scan.uidlist.records
        before = {e.info.uid: e.info.flags for e in self.by_base.values()}
        self.by_base, self.by_uid = {}, {}
        self._top_uid, self._ordered, self._octets = 0, True, 0
        log = self.modseqs
        live = log.live if log.sync() and log.uidvalidity == scan.uidlist.uidvalidity else None
        path, keywords = self.path, self.keywords
        for base, (sub, fname) in scan.disk.items():
            rec = records.get(base)
            if rec is not None:
                self.add_entry(make_entry(path, keywords, base, sub, fname, rec, live))
        after = {e.info.uid: e.info.flags for e in self.by_base.values()}
        self._dropped |= before.keys() - after.keys()
        # Only the messages the log did not explain need a look when settling.
        self._check = {u for u, e in self.by_uid.items() if not e.info.modseq}
        return before != after or scan.uidlist.uidvalidity != self.uidvalidity

    def _reconcile(self, base: str, found: tuple[str, str] | None, rec: Record | None) -> bool:
        """Bring one message in line with the disk; True if that changed what sessions see."""
        old = self.by_base.get(base)
        if found is None or rec is None:
            if old is None:
                return False
            self.drop_entry(old.info.uid)
            return True
        sub, fname = found
        if old is not None and old.info.uid == rec.uid:
            if old.fname == fname and old.sub == sub:
                return False
            letters = letters_of(fname)
            info = old.info
            flags = self.keywords.flags(letters)
            if flags != info.flags:
                info = MessageInfo(
                    info.uid, base, flags, info.size, info.internal_date, guid=info.guid
                )
            self.add_entry(Entry(base, sub, fname, letters, info))
            return flags != old.info.flags
        if old is not None:
            self.drop_entry(old.info.uid)
        self.add_entry(make_entry(self.path, self.keywords, base, sub, fname, rec))
        return True

    def _reload_keywords(self) -> bool:
        self.keywords.load()
        stamp = self.keywords.stamp
        if stamp == self._kw_stamp:
            return False
        self._kw_stamp = stamp
        return self.loaded

    # -- changes made here ---------------------------------------------------------------

    def touch(self) -> None:
        """Record a change we made ourselves (the next check re-lists to confirm)."""
        self.version = next(_versions)
        self._snapshot = None

    def add_entry(self, entry: Entry) -> None:
        uid = entry.info.uid
        old = self.by_uid.get(uid)
        if uid > self._top_uid:
            self._top_uid = uid
        elif old is None:
            self._ordered = False  # by_uid is no longer in UID order: messages() re-sorts
        self._octets += entry.info.size - (0 if old is None else old.info.size)
        self.by_uid[uid] = entry
        self.by_base[entry.base] = entry
        self._touched.add(entry.base)
        self._check.add(uid)

    def drop_entry(self, uid: int) -> Entry | None:
        entry = self.by_uid.pop(uid, None)
        if entry is not None:
            self._octets -= entry.info.size
            self.by_base.pop(entry.base, None)
            self._touched.add(entry.base)
            self._dropped.add(uid)
            self._check.discard(uid)
        return entry

    # -- mod-sequences (RFC 7162; the log is ``modseq.py``) --------------------------------

    def needs_settle(self) -> bool:
        """Messages were added, changed or dropped since their mod-sequences were settled."""
        return bool(self._check or self._dropped) or self.modseqs.uidvalidity != self.uidvalidity

    def settle_unlocked(self) -> bool:
        """Take the mod-sequences the log already has for what changed (another process of
        ours wrote them); True when nothing is left that needs a new one (else: ``settle``)."""
        if not self.needs_settle():
            return True
        log = self.modseqs
        if not log.sync() or log.uidvalidity != self.uidvalidity:
            return False
        return not self._adopt(log)

    def _adopt(self, log: ModseqLog) -> list[Change]:
        """Set the known mod-sequences; returns the changes the log does not explain."""
        todo: list[Change] = []
        changed = False
        by_uid = self.by_uid
        for uid in self._check:
            e = by_uid.get(uid)
            if e is None:
                continue
            value = log.modseq_of(uid, e.letters)
            if value is None:
                todo.append((uid, e.letters))
            elif value != e.info.modseq:
                i = e.info
                e.info = MessageInfo(i.uid, i.key, i.flags, i.size, i.internal_date, value, i.guid)
                changed = True
        todo.extend((uid, None) for uid in self._dropped if uid in log.live)
        if not todo:
            self._check.clear()
            self._dropped.clear()
        if changed:
            self.touch()
        return todo

    def settle(self) -> None:
        """``settle_locked`` under the folder's dot-lock (blocking)."""
        with DotLock(self.path):
            self.settle_locked()

    def settle_locked(self) -> None:
        """Give what changed unexplained one new mod-sequence in the log (dot-lock held)."""
        if not self.needs_settle():
            return
        log = self.modseqs
        if not log.sync() or log.uidvalidity != self.uidvalidity:
            log.create_locked(self.uidvalidity, {u: e.letters for u, e in self.by_uid.items()})
            self._check = set(self.by_uid)
            self._dropped.clear()
        todo = self._adopt(log)
        if todo:
            value = log.bump_locked(todo, synced=True)
            for uid, letters in todo:
                e = self.by_uid.get(uid) if letters is not None else None
                if e is not None:
                    i = e.info
                    e.info = MessageInfo(
                        i.uid, i.key, i.flags, i.size, i.internal_date, value, i.guid
                    )
            self._check.clear()
            self._dropped.clear()
            self.touch()
            log.compact_locked()

    def vanished_since(self, modseq: int) -> list[int] | None:
        """UIDs expunged after ``modseq``; None when the log does not go back that far."""
        log = self.modseqs
        if modseq >= log.highest:
            return []
        return log.vanished_since(modseq)

    def file_path(self, entry: Entry) -> Path:
        return self.path / entry.sub / entry.fname

    def messages(self) -> tuple[MessageInfo, ...]:
        """The messages in UID order (rebuilt only when the version changed)."""
        snap = self._snapshot
        if snap is not None and snap[0] == self.version:
            return snap[1]
        if not self._ordered:
            self.by_uid = {u: self.by_uid[u] for u in sorted(self.by_uid)}
            self._ordered = True
        msgs = tuple(e.info for e in self.by_uid.values())
        self._snapshot = (self.version, msgs)
        return msgs

    def usage(self) -> tuple[int, int]:
        """Octets and messages in the folder (a running total: no sum over the messages)."""
        return self._octets, len(self.by_uid)

    def uidlist_state(self) -> tuple[UidList, Stamp | None]:
        return self._ul, self._ul_stamp

    def set_uidlist_state(self, ul: UidList, stamp: Stamp | None) -> None:
        self._ul, self._ul_stamp = ul, stamp
        self.uidvalidity, self.guid, self.uidnext = ul.uidvalidity, ul.guid, ul.next_free()

    def uidlist_changed(self) -> bool:
        return file_stamp(self._looked_at[2]) != self._ul_stamp

    def close(self) -> None:
        self.dead = True
        self.cache.close()
        self.modseqs.close()
