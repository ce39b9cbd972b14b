"""``InotifyWatcher``: the kernel tells us which watched folder another process changed.

For every folder somebody is looking at (``FolderIndexes.watched``) three directories are
watched: ``new/`` and ``cur/`` (deliveries, flag renames, expunges) and the folder's own
directory (its ``dovecot-uidlist`` and ``dovecot-keywords``, replaced by rename or appended to).
The root of each watched user is watched too (it is also INBOX's directory): a folder directory
created, removed or renamed there re-scans the folder of that name, so a folder removed by
another process is forgotten and a recreated one is found again.

Events mark folders dirty; ``COALESCE_SECONDS`` after the first event of a burst, each dirty
folder is re-scanned once (a delivery touches new/ and the uidlist; one re-scan sees both),
unless this process's index already shows what the events report: our own changes raise events
too (``folder_events.py``). A writer that takes the folder's dot-lock (mailsrv, Dovecot) is done
when it removes the lock: when that writer was another process, the event re-scans the folder at
once, without the rest of the wait (from the first event to the look: median 3.0 -> 1.0-2.7 ms
for another process's delivery, measured under load).
An ``IN_Q_OVERFLOW`` (the kernel dropped events) re-scans every watched folder. The set of
watches follows the set of watched folders: at once when a folder is opened or a user
subscribed (``ensure_started``), and every ``interval`` seconds to drop the watches nobody needs.
When the kernel refuses a watch (``ENOSPC``: ``fs.inotify.max_user_watches`` reached), that
user's folders are polled instead (logged once per user); when it refuses an inotify instance,
every folder is.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mailsrv.store import inotify, layout
from mailsrv.store.base import StoreError
from mailsrv.store.folder import FolderIndex
from mailsrv.store.folder_events import FolderEvents
from mailsrv.store.poller import Rescan, Targets, poll_once
from mailsrv.store.watch_mode import POLL_SECONDS

log = logging.getLogger(__name__)

#: Wait after the first event of a burst: the files of one delivery change within ~1 ms.
COALESCE_SECONDS = 0.003
#: What is asked of every watched directory: entries appearing, leaving, being rewritten, and
#: the directory itself going away.
WATCH_MASK = (
    inotify.IN_CREATE
    | inotify.IN_DELETE
    | inotify.IN_MOVED_FROM
    | inotify.IN_MOVED_TO
    | inotify.IN_CLOSE_WRITE
    | inotify.IN_DELETE_SELF
    | inotify.IN_MOVE_SELF
    | inotify.IN_ONLYDIR
)
_GONE = inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_UNMOUNT | inotify.IN_IGNORED
_LOCK_GONE = inotify.IN_DELETE | inotify.IN_MOVED_FROM
#: Entries of a folder's directory whose change is a change of the folder.
_FOLDER_ENTRIES = frozenset({"dovecot-keywords", "new", "cur"})
UIDLIST = "dovecot-uidlist"
#: The folder's dot-lock (``uidlist.DotLock``): its removal ends another writer's change.
LOCK = "dovecot-uidlist.lock"

_Key = tuple[str, str]  # (user, folder name)


@dataclass(slots=True)
class _Roles:
    """What events in one directory mean."""

    #: Folders for which any entry event counts (the directory is their new/ or cur/).
    messages: set[_Key] = field(default_factory=set)
    #: Folders whose own directory this is (uidlist, keywords, new/ and cur/ live in it).
    home: set[_Key] = field(default_factory=set)
    #: Their indexes as of the last ``sync`` (a hint for the dot-lock's removal).
    indexes: dict[_Key, FolderIndex] = field(default_factory=dict)
    #: The user whose root this is (folder directories are created and removed in it).
    root_of: str | None = None


@dataclass(slots=True)
class _Watch:
    path: str
    wd: int
    roles: _Roles

    @property
    def sub(self) -> str:
        """``new`` or ``cur`` for a folder's message directory."""
        return os.path.basename(self.path)


class InotifyWatcher:
    """Started lazily (first open or subscribe on a running loop), stopped by ``stop()``."""

    def __init__(
        self,
        root: Path,
        targets: Targets,
        watched_users: Callable[[], set[str | None]],
        rescan: Rescan,
        interval: float = POLL_SECONDS,
        make_inotify: Callable[[], inotify.Inotify] = inotify.Inotify,
        *,
        folders_changed: Callable[[str], None] | None = None,
    ) -> None:
        self._root = root
        #: Told the user whose root gained or lost a folder directory (after the re-scans).
        self._folders_changed = folders_changed
        self._folder_lists: set[str] = set()
        self._targets = targets
        self._watched_users = watched_users
        self._rescan = rescan
        self._interval = interval
        self._make_inotify = make_inotify
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ino: inotify.Inotify | None = None
        self._by_wd: dict[int, _Watch] = {}
        self._by_path: dict[str, _Watch] = {}
        self._dirty: dict[_Key, FolderEvents] = {}
        self._dirty_users: set[str] = set()
        self._everything = False
        #: A dirty folder's dot-lock was removed: its writer is done, look now.
        self._released = False
        self._flush_at: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._sync_soon: asyncio.Handle | None = None
        self._resync: asyncio.Task[None] | None = None
        #: Users whose folders are polled: the kernel refused a watch for them.
        self.polled_users: set[str] = set()
        #: Every folder is polled: the kernel refused an inotify instance.
        self.polling_all = False

    # -- lifecycle -------------------------------------------------------------------------

    def ensure_started(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._loop is not loop or not self.running:
            self._release()
            self._start(loop)
        if self._sync_soon is None:
            self._sync_soon = loop.call_soon(self._sync_now)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        try:
            self._ino = self._make_inotify()
        except OSError as exc:
            log.warning(
                "cannot use inotify (%s): polling the Maildir every %ss", exc, self._interval
            )
            self.polling_all = True
        else:
            loop.add_reader(self._ino.fileno(), self._readable)
        self._resync = loop.create_task(self._resync_forever(), name="mailsrv-maildir-watcher")

    @property
    def running(self) -> bool:
        return self._resync is not None and not self._resync.done()

    @property
    def watch_count(self) -> int:
        """Directories watched now."""
        return len(self._by_path)

    @property
    def settled(self) -> bool:
        """No event waits to be looked at, no re-scan or watch update is under way."""
        pending = self._flush_at, self._flushing, self._sync_soon
        dirty = self._dirty or self._dirty_users or self._everything
        return not dirty and all(p is None for p in pending)

    async def stop(self) -> None:
        tasks = [t for t in (self._resync, self._flushing) if t is not None]
        self._release()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _release(self) -> None:
        """Give the descriptor back and forget every watch (the tasks are cancelled)."""
        for handle in (self._flush_at, self._sync_soon):
            if handle is not None:
                handle.cancel()
        for task in (self._resync, self._flushing):
            if task is not None:
                task.cancel()
        self._flush_at = self._sync_soon = None
        self._resync = self._flushing = None
        ino, self._ino = self._ino, None
        if ino is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(ino.fileno())
            ino.close()
        self._loop = None
        self._by_wd.clear()
        self._by_path.clear()
        self._dirty = {}
        self._dirty_users.clear()
        self._everything = False
        self._released = False
        self.polled_users.clear()
        self.polling_all = False

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.sync()
            except Exception:  # keep watching what we can; the next round tries again
                log.exception("updating the inotify watches failed")
            if self.polling_all or self.polled_users:
                await poll_once(self._polled(), self._rescan)

    def _polled(self) -> list[FolderIndex]:
        if self.polling_all:
            return self._targets()
        return [i for i in self._targets() if i.user in self.polled_users]

    # -- which directories -----------------------------------------------------------------

    def _plan(self) -> dict[str, _Roles]:
        plan: dict[str, _Roles] = {}
        roots: dict[str, Path] = {}
        for idx in self._targets():
            if idx.dead or idx.user in self.polled_users:
                continue
            key = (idx.user, idx.name)
            plan.setdefault(str(idx.path / "new"), _Roles()).messages.add(key)
            plan.setdefault(str(idx.path / "cur"), _Roles()).messages.add(key)
            home = plan.setdefault(str(idx.path), _Roles())
            home.home.add(key)
            home.indexes[key] = idx
            roots[idx.user] = idx.user_root
        for user in self._watched_users():
            if user is None or user in roots or user in self.polled_users:
                continue
            with contextlib.suppress(StoreError):
                roots[user] = layout.user_dir(self._root, user)
        for user, path in roots.items():
            plan.setdefault(str(path), _Roles()).root_of = user
        return plan

    def _sync_now(self) -> None:
        self._sync_soon = None
        self.sync()

    def sync(self) -> None:
        """Watch exactly the directories of the folders and users watched now."""
        if self._ino is None:
            return
        plan = self._plan()
        for path in [p for p in self._by_path if p not in plan]:
            self._unwatch(self._by_path.pop(path))
        for path, roles in plan.items():
            watch = self._by_path.get(path)
            if watch is not None:
                watch.roles = roles
            elif not self._refused(roles):
                self._watch(path, roles)
        if self._dirty:
            self._schedule_flush()

    def _refused(self, roles: _Roles) -> bool:
        users = {u for u, _ in roles.messages | roles.home}
        if roles.root_of is not None:
            users.add(roles.root_of)
        return bool(users & self.polled_users)

    def _watch(self, path: str, roles: _Roles) -> None:
        if self._ino is None:
            return
        try:
            wd = self._ino.add_watch(path, WATCH_MASK)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self._force(roles.messages | roles.home)  # gone: the re-scan forgets it
                return
            self._poll_instead(roles, exc)
            return
        other = self._by_wd.get(wd)
        if other is not None:  # the same directory under another name (renamed meanwhile)
            self._by_path.pop(other.path, None)
        watch = _Watch(path, wd, roles)
        self._by_wd[wd] = watch
        self._by_path[path] = watch
        # What changed between the folder's last scan and this watch is seen now.
        self._force(roles.messages | roles.home)

    def _unwatch(self, watch: _Watch) -> None:
        if self._by_wd.get(watch.wd) is watch:
            del self._by_wd[watch.wd]
            if self._ino is not None:
                self._ino.rm_watch(watch.wd)

    def _poll_instead(self, roles: _Roles, exc: OSError) -> None:
        users = {u for u, _ in roles.messages | roles.home}
        if roles.root_of is not None:
            users.add(roles.root_of)
        for user in sorted(users - self.polled_users):
            why = "the inotify watch limit (fs.inotify.max_user_watches) is reached"
            if exc.errno != errno.ENOSPC:
                why = f"inotify refused a watch ({exc})"
            log.warning("%s: polling the folders of %s every %ss", why, user, self._interval)
            self.polled_users.add(user)
        for path in [p for p, w in self._by_path.items() if self._refused(w.roles)]:
            self._unwatch(self._by_path.pop(path))

    # -- events ----------------------------------------------------------------------------

    def _readable(self) -> None:
        if self._ino is None:
            return
        try:
            events = self._ino.read_events()
        except OSError:
            log.exception("reading inotify events failed")
            return
        self.handle_events(events)

    def handle_events(self, events: Iterable[inotify.InotifyEvent]) -> None:
        """Mark the folders the events concern and schedule their re-scan."""
        for event in events:
            self._note(event)
        if self._dirty or self._dirty_users or self._everything:
            self._schedule_flush()

    def _note(self, event: inotify.InotifyEvent) -> None:
        if event.mask & inotify.IN_Q_OVERFLOW:
            self._everything = True  # events were lost: look at every folder
            return
        watch = self._by_wd.get(event.wd)
        if watch is None:
            return
        roles = watch.roles
        if event.mask & _GONE and not event.name:
            self._force(roles.messages | roles.home)
            if roles.root_of is not None:
                self._dirty_users.add(roles.root_of)
            if event.mask & inotify.IN_IGNORED:  # the kernel dropped the watch
                del self._by_wd[event.wd]
                if self._by_path.get(watch.path) is watch:
                    del self._by_path[watch.path]
            return
        for key in roles.messages:
            self._events(key).entry(watch.sub, event.name, event.mask)
        if event.name == LOCK:
            if event.mask & _LOCK_GONE:
                self._note_release(roles)
        elif event.name == UIDLIST:
            for key in roles.home:
                self._events(key).uidlist = True
        elif event.name in _FOLDER_ENTRIES:
            self._force(roles.home)
        if roles.root_of is not None and event.mask & inotify.IN_ISDIR:
            name = layout.dir_folder(event.name)
            if name is not None:
                self._force([(roles.root_of, name)])
                self._folder_lists.add(roles.root_of)

    def _note_release(self, roles: _Roles) -> None:
        """A writer removed the folder's dot-lock, so its change is complete: look now, unless
        the index already shows what the events say (the change was ours, and looking at once
        would only queue the check behind our next delivery). Without the folder's lock this
        check is a hint; the look itself checks again under it."""
        for key, idx in roles.indexes.items():
            events = self._dirty.get(key)
            if events is not None and not events.explained_by(idx):
                self._released = True

    def _events(self, key: _Key) -> FolderEvents:
        events = self._dirty.get(key)
        if events is None:
            events = self._dirty[key] = FolderEvents()
        return events

    def _force(self, keys: Iterable[_Key]) -> None:
        for key in keys:
            self._events(key).force()

    def _schedule_flush(self) -> None:
        released, self._released = self._released, False
        if self._flushing is not None or self._loop is None:
            return  # the running flush looks again at what is dirty when done
        if released:
            if self._flush_at is not None:
                self._flush_at.cancel()
            self._start_flush()
        elif self._flush_at is None:
            self._flush_at = self._loop.call_later(COALESCE_SECONDS, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_at = None
        if self._loop is not None:
            self._flushing = self._loop.create_task(self._flush(), name="mailsrv-maildir-rescan")

    async def _flush(self) -> None:
        try:
            while self._dirty or self._dirty_users or self._everything or self._folder_lists:
                keys, users, everything = self._dirty, self._dirty_users, self._everything
                self._dirty, self._dirty_users, self._everything = {}, set(), False
                lists, self._folder_lists = self._folder_lists, set()
                todo: list[tuple[FolderIndex, FolderEvents | None]] = []
                for idx in self._targets():
                    events = keys.get((idx.user, idx.name))
                    if everything or idx.user in users:
                        events = None  # look whatever the events say
                    elif events is None:
                        continue
                    if not idx.dead:
                        todo.append((idx, events))
                await asyncio.gather(*(self._rescan_one(idx, ev) for idx, ev in todo))
                if self._folders_changed is not None:
                    for user in sorted(lists):
                        self._folders_changed(user)
        finally:
            if self._flushing is asyncio.current_task():
                self._flushing = None

    async def _rescan_one(self, idx: FolderIndex, events: FolderEvents | None) -> None:
        try:
            if events is not None:
                async with idx.lock:  # a change of ours that raised the events is done then
                    if events.explained_by(idx):
                        return
            await self._rescan(idx)
        except StoreError:
            pass  # gone or locked: the sessions will hear of it themselves
        except Exception:
            log.exception("re-scanning folder %s of %s failed", idx.name, idx.user)
