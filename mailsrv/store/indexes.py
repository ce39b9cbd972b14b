"""``FolderIndexes``: the in-process ``FolderIndex`` of every folder a ``MaildirStore`` has open.

The store and all its mailbox handles share one. It finds (or makes) a folder's index, brings an
index up to date with the disk (``refresh``), publishes the events of changes (``emit``), and
forgets indexes: those of folders deleted, renamed or whose user was removed (``drop``), and,
past ``MAX_INDEXES``, those no handle holds. The watcher (``watcher.py``) asks it which
indexes someone is waiting on (``watched``) and re-scans them through it (``rescan``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable
from pathlib import Path

from mailsrv.store import layout
from mailsrv.store.base import EventKind, NoSuchFolder, StoreBusy, StoreEvent
from mailsrv.store.cache import CACHE_FILE
from mailsrv.store.events import EventHub
from mailsrv.store.folder import INLINE_LIMIT, FolderIndex
from mailsrv.store.threads import ThreadTables
from mailsrv.store.uidlist import DotLock

log = logging.getLogger(__name__)

#: Folder indexes kept in memory; past this, those without open handles are forgotten.
MAX_INDEXES = 512

_Key = tuple[str, str]  # (user, folder name)


class FolderIndexes:
    """The indexes of one store's folders under ``root``, keyed by (user, folder name)."""

    def __init__(self, root: Path, hub: EventHub, cache_file: str = CACHE_FILE) -> None:
        self.root = root
        self._hub = hub
        self._cache_file = cache_file
        self._indexes: dict[_Key, FolderIndex] = {}
        #: The live handles on each folder; a folder with one is never forgotten while idle.
        self._handles: dict[_Key, weakref.WeakSet[object]] = {}
        #: Each user's thread table (RFC 8474 THREADID), shared by all the user's folders.
        self.threads = ThreadTables()

    def __len__(self) -> int:
        return len(self._indexes)

    def __contains__(self, key: object) -> bool:
        return key in self._indexes

    async def get(self, user: str, name: str) -> FolderIndex:
        """The index of an existing folder (``NoSuchUser`` / ``NoSuchFolder`` otherwise)."""
        name, path = layout.folder_location(self.root, user, name)
        idx = self._indexes.get((user, name))
        if idx is not None and not idx.dead:
            return idx
        if not (path / "cur").is_dir():
            raise NoSuchFolder(name)
        idx = FolderIndex(user, name, path, layout.user_dir(self.root, user), self._cache_file)
        if len(self._indexes) >= MAX_INDEXES:
            self._evict()
        self._indexes[(user, name)] = idx
        return idx

    def hold(self, idx: FolderIndex, handle: object) -> None:
        """Keep ``idx`` (and watch its folder) for as long as ``handle`` lives."""
        self._handles.setdefault((idx.user, idx.name), weakref.WeakSet()).add(handle)

    def _evict(self) -> None:
        """Forget the indexes nobody holds a handle on (oldest first), keeping memory bounded."""
        for key in list(self._indexes)[: len(self._indexes) // 2]:
            idx = self._indexes[key]
            if not self._handles.get(key) and not idx.lock.locked():
                del self._indexes[key]
                self._handles.pop(key, None)
                idx.close()

    def drop(self, user: str, names: Iterable[str] | None = None) -> None:
        """Forget indexes (folder deleted/renamed, user removed): their handles go stale."""
        for key in list(self._indexes):
            if key[0] == user and (names is None or key[1] in names):
                self._indexes.pop(key).close()
                self._handles.pop(key, None)
        if names is None:
            self.threads.forget(user)

    def drop_all(self) -> None:
        """Forget every index (all users removed at once)."""
        for user in list({u for u, _ in self._indexes}):
            self.drop(user)
        self.threads = ThreadTables()

    async def refresh(self, idx: FolderIndex, force: bool = False) -> None:
        """Bring ``idx`` up to date with the disk (caller holds ``idx.lock``)."""
        if idx.dead:
            raise NoSuchFolder(idx.name)
        if not force and not idx.due():
            if idx.needs_settle():  # a mod-sequence an earlier look had to leave
                await self._settle(idx, inline=len(idx.by_uid) <= INLINE_LIMIT)
            return
        idx.checked_at = time.monotonic()
        if not idx.changed_on_disk():
            if idx.needs_settle():
                await self._settle(idx, inline=True)
            return
        was_loaded = idx.loaded
        inline = len(idx.by_uid) <= INLINE_LIMIT
        try:
            scan = idx.scan() if inline else await asyncio.to_thread(idx.scan)
            if scan.needs_lock:
                await asyncio.to_thread(idx.assign, scan)
            if inline:
                changed = idx.apply(scan)
            else:
                changed = await asyncio.to_thread(idx.apply, scan)
                await asyncio.to_thread(idx.messages)  # sort 100,000 UIDs off the loop too
            await self._settle(idx, inline)
        except NoSuchFolder:
            self.drop(idx.user, [idx.name])
            raise
        if changed and was_loaded:
            self.emit(idx, EventKind.EXTERNAL, (), None)

    @staticmethod
    async def _settle(idx: FolderIndex, inline: bool) -> None:
        """Mod-sequences for what changed: from the log, or new ones under the dot-lock (a
        lock held too long by another process leaves them for the next look)."""
        settled = idx.settle_unlocked() if inline else await asyncio.to_thread(idx.settle_unlocked)
        if settled:
            return
        try:
            await settle_now(idx, inline)
        except (StoreBusy, OSError) as exc:  # a later look tries again; reading goes on
            log.warning("folder %s of %s: mod-sequences wait: %s", idx.name, idx.user, exc)

    async def rescan(self, idx: FolderIndex) -> None:
        """Look at the disk now, whatever the last check (the watcher's call)."""
        async with idx.lock:
            await self.refresh(idx, force=True)

    def watched(self) -> list[FolderIndex]:
        """The indexes with a live handle or a subscriber waiting for their user's events."""
        users = self._hub.watched_users()
        everyone = None in users
        out = []
        for key, idx in self._indexes.items():
            handles = self._handles.get(key)
            if (handles and len(handles)) or everyone or key[0] in users:
                out.append(idx)
        return out

    def emit(
        self,
        idx: FolderIndex,
        kind: EventKind,
        uids: Iterable[int],
        actor: str | None,
        detail: str = "",
    ) -> None:
        """Publish a change to the folder of ``idx``."""
        self._hub.publish(StoreEvent(idx.user, idx.name, kind, tuple(uids), actor, detail))

    def close_caches(self) -> None:
        """Close every index's message cache (the store is closing)."""
        for idx in self._indexes.values():
            idx.cache.close()
            idx.modseqs.close()


async def settle_now(idx: FolderIndex, inline: bool) -> None:
    """Give what changed in ``idx`` its mod-sequences before the change is answered: on the
    event loop when ``inline`` and the dot-lock is free at once, else in a thread (waiting for
    the lock there). Raises ``StoreBusy`` when the lock stays taken."""
    if not idx.needs_settle():
        return
    if inline:
        lock = DotLock(idx.path)
        try:
            lock.acquire(wait=0)
        except StoreBusy:
            pass
        else:
            try:
                idx.settle_locked()
            finally:
                lock.release()
            return
    await asyncio.to_thread(idx.settle)
