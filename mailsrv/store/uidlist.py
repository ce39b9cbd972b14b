"""``dovecot-uidlist`` (format version 3) and its ``dovecot-uidlist.lock`` dot-lock.

The file maps UIDs to Maildir base names::

    3 V1700000000 N4 G0b30d0345e4f75586b3a000055c5d5cb
    1 :1700000000.M1P2Q1.host,S=120,W=120
    3 W2048 :1700000001.M5P2Q2.host,S=2000

The header gives UIDVALIDITY (V), the next UID (N) and the folder GUID (G); each record line
holds a UID, optional extension fields (Dovecot's ``W<wire size>``, ``S<size>``, ``G<guid>`` ...,
kept as they are) and, after ``:``, the base name (the file name before ``:2,``). Records are in
ascending UID order; a writer may append records without touching the header, so the real next
UID is ``max(N, last UID + 1)``. Writers hold the dot-lock (``DotLock``: a private file hard-linked
to the lock name, the link count checked, so it is safe on NFS; ``O_EXCL`` where links fail),
holding ``<pid>:<host>``, taken over when its holder is dead or it is older than
``STALE_LOCK_SECONDS``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailsrv.store.base import StoreBusy
from mailsrv.store.fileio import write_all

log = logging.getLogger(__name__)

UIDLIST_FILE = "dovecot-uidlist"
LOCK_FILE = "dovecot-uidlist.lock"
#: A lock untouched this long belongs to a crashed writer (a rewrite takes milliseconds).
STALE_LOCK_SECONDS = 30.0
#: How long a writer waits for the lock before giving up with ``StoreBusy``.
LOCK_WAIT_SECONDS = 10.0
_HOST = socket.gethostname()


@dataclass(slots=True)
class Record:
    uid: int
    fields: str = ""  # extension fields as written ("W2048 S2000"), kept verbatim


@dataclass(slots=True)
class UidList:
    """The parsed file. ``records`` maps base name -> record, in UID order."""

    uidvalidity: int = 0
    next_uid: int = 1
    guid: str = ""
    records: dict[str, Record] = field(default_factory=dict)
    damaged: bool = False  # the header or a record could not be read
    max_uid: int = 0  # the highest UID seen anywhere in the file, even a damaged one

    def next_free(self) -> int:
        return max(self.next_uid, self.max_uid + 1)


def parse_uidlist(text: str) -> UidList:
    """Parse the file's text; never raises, sets ``damaged`` instead."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # an unfinished last line: a writer crashed mid-append
    out = UidList()
    if not lines:
        out.damaged = True
        return out
    version = _parse_header(lines[0], out)
    last = 0
    for line in lines[1:]:
        uid, _, rest = line.partition(" ")
        if version == 3 and rest[:1] == ":" and uid.isdigit():  # the usual "<uid> :<name>"
            base, record = rest[1:].partition(":")[0], Record(int(uid))
        else:
            rec = _parse_record(line, version)
            if rec is None:
                out.damaged = True
                continue
            base, record = rec
        out.max_uid = max(out.max_uid, record.uid)
        if record.uid <= last:
            out.damaged = True
            continue
        last = record.uid
        out.records[base] = record
    return out


def read_uidlist(folder: Path) -> UidList:
    """The folder's uidlist as it is on disk now, without taking the lock (an empty
    ``UidList`` where there is no file)."""
    try:
        data = (folder / UIDLIST_FILE).read_bytes()
    except FileNotFoundError:
        return UidList()
    return parse_uidlist(data.decode("utf-8", errors="replace"))


def _parse_header(line: str, out: UidList) -> int:
    parts = line.split()
    if not parts or parts[0] not in ("1", "3"):
        out.damaged = True
        return 3
    if parts[0] == "1":  # Dovecot 1.0: "1 <uidvalidity> <next uid>"
        if len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
            out.uidvalidity, out.next_uid = int(parts[1]), int(parts[2])
        else:
            out.damaged = True
        return 1
    for part in parts[1:]:
        key, value = part[:1], part[1:]
        if key == "V" and value.isdigit():
            out.uidvalidity = int(value)
        elif key == "N" and value.isdigit():
            out.next_uid = int(value)
        elif key == "G":
            out.guid = value
    if out.uidvalidity <= 0 or out.next_uid <= 0:
        out.damaged = True
    return 3


def _parse_record(line: str, version: int) -> tuple[str, Record] | None:
    if version == 1:
        uid, _, name = line.partition(" ")
        if not uid.isdigit() or not name:
            return None
        return name.partition(":")[0], Record(int(uid))
    head, sep, name = line.partition(" :")
    if not sep:
        head, sep, name = line.partition(":")
    uid, _, fields = head.strip().partition(" ")
    if not sep or not name or not uid.isdigit() or int(uid) <= 0:
        return None
    return name.partition(":")[0], Record(int(uid), fields.strip())


def guid_of(fields: str) -> str:
    """The message GUID in a record's fields (``G<guid>``), as Dovecot writes it for a copy
    under a new name; "" when there is none: the base name is the GUID."""
    return next((f[1:] for f in fields.split() if f[:1] == "G"), "") if "G" in fields else ""


def guid_field(guid: str) -> str:
    """The ``G`` field of a record; a GUID with blanks or a ``:`` (which would end the fields)
    cannot be written, and gives no field (the copy is then named by its own base name)."""
    if not guid or any(c in guid for c in " \t\n\r:"):
        return ""
    return "G" + guid


def format_header(ul: UidList) -> str:
    return f"3 V{ul.uidvalidity} N{ul.next_free()} G{ul.guid}\n"


def format_record(base: str, rec: Record) -> str:
    return f"{rec.uid} {rec.fields} :{base}\n" if rec.fields else f"{rec.uid} :{base}\n"


def format_uidlist(ul: UidList) -> str:
    parts = [format_header(ul)]
    parts.extend(format_record(b, r) for b, r in sorted(ul.records.items(), key=_by_uid))
    return "".join(parts)


def _by_uid(item: tuple[str, Record]) -> int:
    return item[1].uid


def new_guid() -> str:
    return os.urandom(16).hex()


def write_uidlist(folder: Path, ul: UidList) -> None:
    """Replace the file atomically (temp file in the folder, fsync, rename); hold the lock."""
    tmp = folder / f"{UIDLIST_FILE}.{os.getpid()}.tmp"
    data = format_uidlist(ul).encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, folder / UIDLIST_FILE)


def append_records(folder: Path, records: list[tuple[str, Record]]) -> tuple[int, int, int]:
    """Append record lines (Dovecot does the same); hold the lock. Returns the file's stamp
    (inode, size, mtime) after the append."""
    data = "".join(format_record(b, r) for b, r in records).encode("utf-8")
    fd = os.open(folder / UIDLIST_FILE, os.O_WRONLY | os.O_APPEND)
    try:
        write_all(fd, data)
        os.fsync(fd)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class DotLock:
    """The cross-process writer lock of one folder (blocking; run it off the event loop).

    The lock is taken by hard-linking a private file of this process
    (``mailsrv-lock.<host>.<pid>`` in the folder, holding ``<pid>:<host>``, its mtime set to now
    first) to the lock name, and released by unlinking the name: other processes see the same
    file an ``O_EXCL`` create would give, but no inode is allocated or freed per lock (ext4 makes
    every create slow after many recent deletes). Where hard links fail, ``O_EXCL`` it is.

    Safe on NFS, as Dovecot's and liblockfile's dot-locks are: a ``link()`` that succeeded made
    the lock ours; when it answers ``EEXIST``, the private file's link count tells (2: ours
    after all), since over NFS a link whose reply was lost answers so when sent again.
    Threads of one process share the private file, so the count cannot tell them apart: they
    take turns on a lock of the process first (``_process_lock``).
    """

    __slots__ = ("_folder", "_held", "_path")

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        path = _lock_paths.get(folder)
        if path is None:  # made once per folder: a lock is taken for every flag change
            if len(_lock_paths) >= 4096:
                _lock_paths.clear()
            path = _lock_paths[folder] = folder / LOCK_FILE
        self._path = path
        self._held = False

    def acquire(self, wait: float | None = None) -> None:
        """Take the lock, waiting up to ``wait`` (default ``LOCK_WAIT_SECONDS``) seconds."""
        deadline = time.monotonic() + (LOCK_WAIT_SECONDS if wait is None else wait)
        turn = _process_lock(self._path)
        if not turn.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise StoreBusy("the folder is locked by another thread of this process")
        try:
            self._acquire_file(deadline)
        except BaseException:
            turn.release()
            raise

    def _acquire_file(self, deadline: float) -> None:
        delay = 0.001
        while True:
            try:
                self._try_take()
            except FileExistsError:
                if self._take_over_stale():
                    continue
                if time.monotonic() >= deadline:
                    raise StoreBusy("the folder is locked by another process") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            self._held = True
            return

    def _try_take(self) -> None:
        """One attempt; raises ``FileExistsError`` when someone holds the lock."""
        own = _own_lock_file(self._folder)
        if own is not None:
            try:
                now = time.monotonic()
                if now - _own_touched.get(own, -1e9) > TOUCH_SECONDS:
                    os.utime(own)  # the lock's mtime says how fresh it is (stale takeover)
                    _own_touched[own] = now
                linked = _link_and_count(own, self._path)
            except OSError:
                _forget_own_lock_file(self._folder)  # gone or no links here: create instead
            else:
                if linked:
                    return
                raise FileExistsError(self._path)
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _owner())
        finally:
            os.close(fd)

    def _take_over_stale(self) -> bool:
        try:
            st = os.stat(self._path)
            owner = self._path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return True
        stale = time.time() - st.st_mtime > STALE_LOCK_SECONDS
        pid, _, host = owner.partition(":")
        if not stale and host == _HOST and pid.isdigit() and int(pid) != os.getpid():
            stale = not _alive(int(pid))
        if not stale:
            return False
        # Rename first: only one of several takers wins, and never someone's fresh lock.
        grave = self._path.with_name(f"{LOCK_FILE}.stale.{os.getpid()}")
        try:
            if os.stat(self._path).st_ino != st.st_ino:
                return True
            os.rename(self._path, grave)
        except FileNotFoundError:
            return True
        log.warning("took over a stale lock %s (held by %r)", self._path, owner)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(grave)
        return True

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path)
            finally:
                _process_lock(self._path).release()

    def __enter__(self) -> DotLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _link_and_count(own: str, lock: Path) -> bool:
    """Link ``own`` to ``lock``; whether the link is there. A ``link()`` that succeeds made it
    (no ``stat`` then: one system call less per lock); an ``EEXIST`` may, over NFS, be our own
    link's retried request, which only the link count of ``own`` (2 names) tells."""
    try:
        os.link(own, lock)
    except FileExistsError:
        return os.stat(own).st_nlink == 2
    return True


#: One lock per lock file for the threads of this process (see ``DotLock``): process-wide
#: because the dot-lock's owner is the process, whichever store or thread takes it.
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _forget_process_locks() -> None:
    """In a forked child: only the forking thread lives on, so no turn is taken."""
    global _process_locks_guard
    _process_locks.clear()
    _process_locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_process_locks)


def _process_lock(path: Path) -> threading.Lock:
    key = os.path.abspath(path)
    with _process_locks_guard:
        lock = _process_locks.get(key)
        if lock is None:
            lock = _process_locks[key] = threading.Lock()
        return lock


#: Folders where this process has made its private lock file (``DotLock``), and that file.
_own_files: dict[Path, str] = {}
#: When each private lock file's mtime was last set (monotonic); it is set again past
#: ``TOUCH_SECONDS``, so a lock's mtime is never more than that older than its taking.
_own_touched: dict[str, float] = {}
TOUCH_SECONDS = 1.0
#: Each folder's lock file name, made once.
_lock_paths: dict[Path, Path] = {}
_own_pid = 0
OWN_LOCK_PREFIX = "mailsrv-lock."


def _owner() -> bytes:
    return f"{os.getpid()}:{_HOST}".encode()


def _own_name(pid: int) -> str:
    return f"{OWN_LOCK_PREFIX}{_HOST}.{pid}"


def _own_lock_file(folder: Path) -> str | None:
    """This process's private lock file in ``folder`` (made once); None if it cannot be made."""
    global _own_pid
    if _own_pid != os.getpid():  # forked: the parent's files are not ours
        _own_files.clear()
        _own_touched.clear()
        _own_pid = os.getpid()
    known = _own_files.get(folder)
    if known is not None:
        return known
    path = str(folder / _own_name(_own_pid))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return None
    try:
        os.write(fd, _owner())
    finally:
        os.close(fd)
    if len(_own_files) >= 4096:
        _own_files.clear()
        _own_touched.clear()
    _own_files[folder] = path
    _own_touched[path] = time.monotonic()
    _remove_dead_lock_files(folder)
    return path


def _remove_dead_lock_files(folder: Path) -> None:
    """Private lock files left by processes of this host that are gone (crashed or stopped)."""
    prefix = f"{OWN_LOCK_PREFIX}{_HOST}."
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            pid = name[len(prefix) :] if name.startswith(prefix) else ""
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)


def _forget_own_lock_file(folder: Path) -> None:
    own = _own_files.pop(folder, None)
    if own is not None:
        _own_touched.pop(own, None)
    with contextlib.suppress(OSError):
        os.unlink(folder / _own_name(os.getpid()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


UIDVALIDITY_FILE = "dovecot-uidvalidity"


def next_uidvalidity(user_root: Path, above: int = 0) -> int:
    """A UIDVALIDITY never handed out before for this user, shared with Dovecot.

    Like Dovecot, the last value lives in ``dovecot-uidvalidity`` (hex) in the user's root, and an
    empty marker file ``dovecot-uidvalidity.<hex>`` is renamed from the old value to the new one:
    the rename succeeds for only one of two processes racing for the same value.
    """
    with _uidvalidity_turn:  # threads of this process take turns; processes race on the marker
        return _next_uidvalidity(user_root, above)


#: Serializes ``next_uidvalidity`` within the process: its threads would only make each other
#: retry (and a thread that lost many races in a row must not give up).
_uidvalidity_turn = threading.Lock()


def _next_uidvalidity(user_root: Path, above: int) -> int:
    path = user_root / UIDVALIDITY_FILE
    for attempt in range(200):
        if attempt:
            time.sleep(min(0.001 * attempt, 0.02))  # another process took a value just now
        last, marker = _last_uidvalidity(user_root, path)
        value = max(int(time.time()), last + 1, above + 1)
        new_marker = user_root / f"{UIDVALIDITY_FILE}.{value:08x}"
        try:
            if marker is None:
                fd = os.open(new_marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                os.close(fd)
            else:
                os.rename(marker, new_marker)
        except (FileNotFoundError, FileExistsError):
            continue  # someone else took a value just now: look again
        # Per thread, not just per process: folders of one user are rebuilt in parallel threads.
        tmp = user_root / f"{UIDVALIDITY_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(f"{value:08x}")
        os.replace(tmp, path)
        return value
    raise StoreBusy("could not take a new UIDVALIDITY: other processes keep taking them")


def _last_uidvalidity(user_root: Path, path: Path) -> tuple[int, Path | None]:
    last = 0
    marker: Path | None = None
    with contextlib.suppress(FileNotFoundError, ValueError):
        last = int(path.read_text().strip() or "0", 16)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(user_root):
            if name.startswith(UIDVALIDITY_FILE + "."):
                suffix = name[len(UIDVALIDITY_FILE) + 1 :]
                if len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix):
                    value = int(suffix, 16)
                    if marker is None or value >= last:
                        marker, last = user_root / name, max(last, value)
    return last, marker
