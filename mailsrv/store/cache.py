"""The per-folder cache of protocol data (``mailsrv-cache.sqlite``), keyed by (base name, key).

Sessions store parsed data here (an IMAP BODYSTRUCTURE, an ENVELOPE) so a folder of 100,000
messages is not re-parsed after the first time, across restarts too. Keys are Maildir base names,
which survive flag changes and UIDVALIDITY changes. Writes are batched: one commit per event-loop
turn. The file name starts with neither ``.`` nor a digit, so Dovecot never takes it for a folder
or a message. SQLite's WAL needs the memory of one machine, so hosts sharing a root over a network
filesystem each keep their own file (``cache_file_for``); the data is the same for all, derived
from message files that never change.

Writes wait for nobody: several processes (``serve --workers N``) share one file, and SQLite lets
one of them write at a time. Rows are queued and written in one transaction per loop turn that
takes the write lock only if it is free within ``WRITE_WAIT`` seconds; when another process holds
it, the rows stay queued and the write is tried again ``RETRY_AFTER`` later (up to ``MAX_QUEUED``
rows: beyond that the oldest are dropped; the data can always be parsed again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FILE = "mailsrv-cache.sqlite"
#: Bytes of cached values a folder's cache also keeps in memory.
MEMO_BYTES = 8 * 1024 * 1024
#: Messages per query in ``get_many`` (well under SQLite's limit on bound parameters).
_CHUNK = 500
#: Seconds a write waits for another process's write lock (it blocks the event loop).
WRITE_WAIT = 0.02
#: Seconds before queued rows are tried again when the lock was taken.
RETRY_AFTER = 0.2
#: Rows (and deletions) queued at most while the lock stays taken.
MAX_QUEUED = 20_000
#: Seconds to wait for the lock when opening the file and when closing it (last write).
_OPEN_WAIT = 2.0

# One queued write: ("put", rows) or ("delete", [(base,), ...]).
_Write = tuple[str, list[tuple[str, str, bytes]] | list[tuple[str]]]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cache ("
    " base TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (base, key))"
    " WITHOUT ROWID"
)


def cache_file_for(host: str | None) -> str:
    """The cache's file name: ``mailsrv-cache.sqlite``, or one per cluster host
    (``mailsrv-cache.10.0.0.2.sqlite``; the ``:`` of an IPv6 address as ``-``)."""
    if host is None:
        return CACHE_FILE
    return f"mailsrv-cache.{host.replace(':', '-')}.sqlite"


class MessageCache:
    """One folder's cache; opened lazily, used from the event loop thread only."""

    __slots__ = (
        "_busy_logged",
        "_commit_pending",
        "_db",
        "_memo",
        "_memo_bytes",
        "_path",
        "_queue",
        "_queued",
    )

    def __init__(self, folder: Path, name: str = CACHE_FILE) -> None:
        self._path = folder / name
        self._db: sqlite3.Connection | None = None
        self._commit_pending = False
        self._queue: list[_Write] = []  # writes not yet in the file, in order
        self._queued = 0  # rows in _queue
        self._busy_logged = False
        # What was read or written lately, by base then key, up to MEMO_BYTES of values: a
        # repeated FETCH of a folder's metadata does not go back to SQLite.
        self._memo: dict[str, dict[str, bytes]] = {}
        self._memo_bytes = 0

    def _remember(self, base: str, key: str, value: bytes) -> None:
        entry = self._memo.get(base)
        old = None if entry is None else entry.get(key)
        if old is None and self._memo_bytes + len(value) > MEMO_BYTES:
            return  # full: what is remembered stays, the rest comes from SQLite
        if entry is None:
            entry = self._memo[base] = {}
        entry[key] = value
        self._memo_bytes += len(value) - (0 if old is None else len(old))

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None:
            try:
                db = sqlite3.connect(self._path, isolation_level=None, timeout=_OPEN_WAIT)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(_SCHEMA)
                db.execute(f"PRAGMA busy_timeout = {int(WRITE_WAIT * 1000)}")
            except sqlite3.Error:
                log.exception("cannot open the message cache %s; running without it", self._path)
                return None
            self._db = db
        return self._db

    def _exists(self) -> bool:
        return self._db is not None or self._path.exists()

    def get(self, base: str, key: str) -> bytes | None:
        entry = self._memo.get(base)
        if entry is not None and key in entry:
            return entry[key]
        if not self._exists():
            return None
        db = self._conn()
        if db is None:
            return None
        try:
            row = db.execute(
                "SELECT value FROM cache WHERE base = ? AND key = ?", (base, key)
            ).fetchone()
        except sqlite3.Error:
            log.exception("message cache read failed (%s)", self._path)
            return None
        if row is None:
            return None
        value = bytes(row[0])
        self._remember(base, key, value)
        return value

    def get_many(self, bases: Sequence[str], keys: Collection[str]) -> dict[tuple[str, str], bytes]:
        """The cached ``keys`` of many messages at once: ``{(base, key): value}``, misses left out.

        One query per ``_CHUNK`` messages instead of one per message and key (a FETCH 1:* on a
        big folder asks for thousands).
        """
        found: dict[tuple[str, str], bytes] = {}
        memo = self._memo
        rest: list[str] = []
        for base in bases:
            entry = memo.get(base)
            if entry is not None and all(k in entry for k in keys):
                for k in keys:
                    found[base, k] = entry[k]
            else:
                rest.append(base)
        bases = rest
        if not bases or not self._exists():
            return found
        db = self._conn()
        if db is None:
            return found
        try:
            for i in range(0, len(bases), _CHUNK):
                part = bases[i : i + _CHUNK]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT base, key, value FROM cache WHERE base IN ({marks})",  # noqa: S608
                    part,
                ).fetchall()
                for base, key, value in rows:
                    if key in keys:
                        found[base, key] = data = bytes(value)
                        self._remember(base, key, data)
        except sqlite3.Error:
            log.exception("message cache read failed (%s)", self._path)
        return found

    def put_many(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Store many ``(base, key, value)`` rows in one statement (committed with the rest)."""
        if not rows:
            return
        for base, key, value in rows:
            self._remember(base, key, value)
        self._enqueue(("put", list(rows)))

    def put(self, base: str, key: str, value: bytes) -> None:
        self._remember(base, key, value)
        self._enqueue(("put", [(base, key, value)]))

    def copy_to(self, other: MessageCache, pairs: Iterable[tuple[str, str]]) -> None:
        """Copy the cached data of ``(source base, destination base)`` pairs."""
        if not self._exists():
            return
        db = self._conn()
        if db is None:
            return
        for src, dst in pairs:
            try:
                rows = db.execute("SELECT key, value FROM cache WHERE base = ?", (src,)).fetchall()
            except sqlite3.Error:
                return
            for key, value in rows:
                other.put(dst, key, bytes(value))

    def forget(self, bases: Iterable[str]) -> None:
        bases = list(bases)
        for base in bases:
            entry = self._memo.pop(base, None)
            if entry is not None:
                self._memo_bytes -= sum(len(v) for v in entry.values())
        if not bases or (not self._queue and not self._exists()):
            return
        self._enqueue(("delete", [(b,) for b in bases]))

    def _enqueue(self, write: _Write) -> None:
        if self._conn() is None:  # opened (the file made) now; written at the loop's next turn
            return
        self._queue.append(write)
        self._queued += len(write[1])
        while self._queued > MAX_QUEUED and len(self._queue) > 1:
            self._queued -= len(self._queue.pop(0)[1])
        self._schedule_commit(0.0)

    def _schedule_commit(self, delay: float) -> None:
        if self._commit_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.commit()
            return
        self._commit_pending = True
        if delay:
            loop.call_later(delay, self.commit)
        else:
            loop.call_soon(self.commit)

    def commit(self) -> None:
        """Write what is queued in one transaction; if another process holds the write lock,
        keep it queued and try again later."""
        self._commit_pending = False
        if not self._queue:
            return
        db = self._conn()
        if db is None:
            self._queue, self._queued = [], 0
            return
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock now, or "locked" after WRITE_WAIT
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                self._failed("write", exc)
                return
            if not self._busy_logged:
                self._busy_logged = True
                log.debug("message cache %s: another process is writing; retrying", self._path)
            self._schedule_commit(RETRY_AFTER)
            return
        except sqlite3.Error as exc:
            self._failed("write", exc)
            return
        queue, self._queue, self._queued = self._queue, [], 0
        try:
            for kind, rows in queue:
                if kind == "put":
                    db.executemany(
                        "INSERT OR REPLACE INTO cache (base, key, value) VALUES (?, ?, ?)", rows
                    )
                else:
                    db.executemany("DELETE FROM cache WHERE base = ?", rows)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._failed("write", exc)

    def _failed(self, what: str, exc: sqlite3.Error) -> None:
        """One line, no traceback: the cache is an optimisation, the data is parsed again."""
        self._queue, self._queued = [], 0
        log.warning("message cache %s failed (%s): %s", what, self._path, exc)

    def close(self) -> None:
        self._memo.clear()
        self._memo_bytes = 0
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute(f"PRAGMA busy_timeout = {int(_OPEN_WAIT * 1000)}")
            self.commit()
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self._queue, self._queued = [], 0
