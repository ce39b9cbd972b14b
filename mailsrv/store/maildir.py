"""``MaildirStore``: the ``Store`` on a Maildir++ tree that Dovecot 2.3 can share.

Layout, UIDs, flags and keywords are Dovecot's (``layout.py``, ``uidlist.py``, ``filenames.py``,
``keywords.py``). Every folder has one in-process ``FolderIndex`` shared by all handles on it
(``mailbox.py``); the store and its handles find, refresh and forget indexes through one
``FolderIndexes`` (``indexes.py``). Each change we make is published as a ``StoreEvent``, and
changes made by other processes are found by re-scans and by the watcher (``watcher.py``:
inotify, or polling).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from mailsrv.message.wire import to_wire
from mailsrv.store import folder_ops, layout, session_lock
from mailsrv.store.access_keys import AccessKeys
from mailsrv.store.base import (
    DEFAULT_SPECIAL_FOLDERS,
    HIERARCHY_DELIMITER,
    INBOX,
    EventKind,
    FolderExists,
    FolderInfo,
    InvalidName,
    NewMessage,
    NoSuchFolder,
    NoSuchUser,
    StoreBusy,
    StoreError,
    StoreEvent,
    Usage,
    all_mail_copy,
)
from mailsrv.store.cache import CACHE_FILE
from mailsrv.store.events import EventHub, Subscription
from mailsrv.store.folder import FolderIndex
from mailsrv.store.indexes import FolderIndexes
from mailsrv.store.mailbox import MaildirMailbox
from mailsrv.store.names import check_folder_name, check_user_name, normalize_folder_name
from mailsrv.store.quota_lock import LOCK_NAME as QUOTA_LOCK_NAME
from mailsrv.store.scan import Entry
from mailsrv.store.session_lock import NO_LOCK, SessionLock
from mailsrv.store.watch_mode import POLL_SECONDS, WatchMode
from mailsrv.store.watcher import default_mode, make_watcher

log = logging.getLogger(__name__)

#: Folder directories being removed are renamed to this first: no leading "." in a user's root,
#: so Dovecot never takes one for a folder.
TRASH_PREFIX = "mailsrv-removing-"
#: Threads that write delivered messages. Few: with more, the threads and the event loop
#: mostly fight over the GIL (2 instead of the default pool: ~12 % less CPU per SMTP delivery);
#: deliveries that queue up for a busy folder go in together anyway.
DELIVERY_THREADS = 2
#: Users being removed: a leading "." in the store root, so never a valid user name.
USER_TRASH_PREFIX = ".mailsrv-removing-"

T = TypeVar("T")
#: A delivery waiting for its folder, and where its result goes.
_Queued = tuple[folder_ops.Delivery, "asyncio.Future[Entry]"]


def _retrieved(fut: asyncio.Future[Entry]) -> None:
    if not fut.cancelled():
        fut.exception()


def _remove_trees(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


class MaildirStore(AccessKeys):
    """All users' mail under ``root``; one per process, shared by every session."""

    def __init__(
        self,
        root: Path,
        create_users: bool = False,
        watch: WatchMode | None = None,
        poll_interval: float = POLL_SECONDS,
        special_folders: Mapping[str, str] | None = None,
        all_mail: bool = False,
        cache_file: str = CACHE_FILE,
    ) -> None:
        self.root = Path(root)
        self.create_users = create_users
        #: The special-use folders a new user gets (attribute -> name).
        self.special_folders = dict(
            DEFAULT_SPECIAL_FOLDERS if special_folders is None else special_folders
        )
        #: Every delivery is also copied into the user's ``\\All`` folder (Gmail's All Mail).
        self.all_mail = all_mail
        self._hub = EventHub()
        self._indexes = FolderIndexes(self.root, self._hub, cache_file)
        self._watcher = make_watcher(
            watch or default_mode(),
            self.root,
            self._indexes.watched,
            self._hub.watched_users,
            self._indexes.rescan,
            poll_interval,
            self._folders_changed,
        )
        #: Each user's folders as this process last listed or changed them (``_folders_changed``).
        self._folder_names: dict[str, set[str]] = {}
        #: ``reset()`` renames user roots aside and deletes them in the background.
        self._removals: set[asyncio.Future[None]] = set()
        self._removing: set[Path] = set()
        #: Deliveries waiting for a busy folder, delivered together (``_join_batch``).
        self._batches: dict[FolderIndex, list[_Queued]] = {}
        self._batch_tasks: set[asyncio.Task[None]] = set()
        self._writer: ThreadPoolExecutor | None = None

    # -- internals -------------------------------------------------------------------------

    def _folders_changed(self, user: str) -> None:
        """The watcher saw a folder directory of ``user`` come or go: ``FOLDERS`` when the
        folders are not the ones this process last listed and made (ours publish their own
        events). Nothing before a first listing: nobody has a list to compare then."""
        known = self._folder_names.get(user)
        if known is None:
            return
        try:
            now = {INBOX, *layout.folder_dirs(layout.existing_user_dir(self.root, user))}
        except (StoreError, OSError):
            now = set()  # the user is gone: so are the folders
        if now != known:
            self._folder_names[user] = now
            self._hub.publish(StoreEvent(user, "", EventKind.FOLDERS))

    def _names(self, user: str, add: Iterable[str] = (), drop: Iterable[str] = ()) -> None:
        """Our own change to the user's folders (``_folders_changed`` compares with them)."""
        known = self._folder_names.get(user)
        if known is not None:
            known.difference_update(drop)
            known.update(add)

    def _event(self, user: str, folder: str, kind: EventKind, detail: str = "") -> None:
        self._hub.publish(StoreEvent(user, folder, kind, (), None, detail))

    def _trash(self, path: Path, prefix: str = TRASH_PREFIX) -> Path:
        grave = path.parent / f"{prefix}{uuid.uuid4().hex}"
        os.rename(path, grave)
        return grave

    def _leftovers(self) -> list[Path]:
        """Removals a crash interrupted, to finish now."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return [self.root / n for n in names if n.startswith(USER_TRASH_PREFIX)]

    # -- Store: users ----------------------------------------------------------------------

    async def ensure_user(self, user: str) -> None:
        root = layout.user_dir(self.root, user)
        if (root / "cur").is_dir():
            return
        layout.make_maildir(root, folder=False)
        specials: dict[str, str | None] = {}
        for attr, name in self.special_folders.items():
            layout.make_maildir(layout.folder_dir(root, name), folder=True)
            specials[name] = attr
        layout.update_subscriptions(root, add=[INBOX, *self.special_folders.values()])
        layout.update_special_use(root, specials)

    async def lock_session(self, user: str) -> SessionLock | None:
        root = layout.user_dir(self.root, user)
        if not (root / "cur").is_dir():
            if not self.create_users:
                return NO_LOCK  # no maildrop: opening it fails with its own reason
            await self.ensure_user(user)
        return await asyncio.to_thread(session_lock.acquire_dotlock, root)

    async def user_exists(self, user: str) -> bool:
        try:
            layout.existing_user_dir(self.root, user)
        except NoSuchUser:
            return False
        return True

    async def list_users(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                check_user_name(name)
            except InvalidName:
                continue
            if (self.root / name / "cur").is_dir():
                out.append(name)
        return sorted(out)

    async def delete_user(self, user: str) -> None:
        try:
            root = layout.existing_user_dir(self.root, user)
        except NoSuchUser:
            return
        self._indexes.drop(user)
        self._folder_names.pop(user, None)
        graves = [self._trash(root, USER_TRASH_PREFIX), *self._leftovers()]
        for grave in set(graves):
            await asyncio.to_thread(_remove_trees, [grave])

    # -- Store: folders --------------------------------------------------------------------

    async def list_folders(self, user: str) -> list[FolderInfo]:
        root = layout.existing_user_dir(self.root, user)
        dirs = layout.folder_dirs(root)
        subs = layout.read_subscriptions(root)
        special = layout.read_special_use(root)
        names = [INBOX, *sorted(n for n in dirs if n != INBOX)]
        self._folder_names[user] = set(names)
        out = []
        for n in names:
            prefix = n + HIERARCHY_DELIMITER
            kids = any(o.startswith(prefix) for o in dirs)
            use = None if n == INBOX else layout.special_use_of(n, special)
            out.append(FolderInfo(n, use, n in subs, kids))
        return out

    async def list_subscriptions(self, user: str) -> list[str]:
        return sorted(layout.read_subscriptions(layout.existing_user_dir(self.root, user)))

    async def create_folder(
        self, user: str, name: str, special_use: str | None = None, *, subscribe: bool = True
    ) -> None:
        root = layout.existing_user_dir(self.root, user)
        name = check_folder_name(name)
        if name == INBOX:
            raise FolderExists(name)
        path = layout.folder_dir(root, name)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            raise FolderExists(name) from None
        layout.make_maildir(path, folder=True)
        if subscribe:
            layout.update_subscriptions(root, add=[name])
        if special_use:
            layout.update_special_use(root, {name: special_use})
        self._names(user, add=[name])
        self._event(user, name, EventKind.FOLDER_CREATED)

    async def delete_folder(self, user: str, name: str) -> None:
        name = normalize_folder_name(name)
        if name == INBOX:
            raise InvalidName("INBOX cannot be deleted")
        root = layout.existing_user_dir(self.root, user)
        name, path = layout.folder_location(self.root, user, name)
        if not path.is_dir():
            raise NoSuchFolder(name)
        self._indexes.drop(user, [name])
        self._names(user, drop=[name])  # before the rename the watcher sees, not after
        grave = self._trash(path)
        layout.update_special_use(root, {name: None})
        await asyncio.to_thread(_remove_trees, [grave])
        self._event(user, name, EventKind.FOLDER_DELETED)

    async def rename_folder(self, user: str, old: str, new: str) -> None:
        root = layout.existing_user_dir(self.root, user)
        old, old_path = layout.folder_location(self.root, user, old)
        new = check_folder_name(new)
        if not (old_path / "cur").is_dir():
            raise NoSuchFolder(old)
        new_path = layout.folder_dir(root, new)
        if new == INBOX or new_path.exists():
            raise FolderExists(new)
        moved = [old]
        if old == INBOX:
            await self._rename_inbox(user, root, new)
        else:
            moved = self._rename_tree(user, root, old, new)
        renamed = [new + name[len(old) :] for name in moved]
        self._names(user, add=renamed, drop=[n for n in moved if n != INBOX])
        for name, to in zip(moved, renamed, strict=True):  # the folder, then its children
            self._event(user, name, EventKind.FOLDER_RENAMED, to)

    def _rename_tree(self, user: str, root: Path, old: str, new: str) -> list[str]:
        dirs = layout.folder_dirs(root)
        moving = sorted(n for n in dirs if n == old or n.startswith(old + HIERARCHY_DELIMITER))
        self._indexes.drop(user, moving)
        for n in moving:
            target = layout.folder_dir(root, new + n[len(old) :])
            if target.exists():
                raise FolderExists(new + n[len(old) :])
        for n in moving:
            os.rename(dirs[n], layout.folder_dir(root, new + n[len(old) :]))
        subs = layout.read_subscriptions(root)
        renamed = {new + s[len(old) :] for s in subs if s in moving}
        layout.update_subscriptions(root, add=renamed, drop=[s for s in subs if s in moving])
        layout.update_special_use(root, rename=(old, new))
        return moving

    async def _rename_inbox(self, user: str, root: Path, new: str) -> None:
        await self.create_folder(user, new)
        inbox = await self.open(user, INBOX)
        snap = await inbox.snapshot()
        if snap.messages:
            await inbox.move([m.uid for m in snap.messages], new)

    async def set_subscribed(self, user: str, name: str, subscribed: bool) -> None:
        root = layout.existing_user_dir(self.root, user)
        name, path = layout.folder_location(self.root, user, name)
        if subscribed:
            if not (path / "cur").is_dir():
                raise NoSuchFolder(name)
            layout.update_subscriptions(root, add=[name])
        else:  # also a name whose folder is gone
            layout.update_subscriptions(root, drop=[name])
        self._event(user, name, EventKind.SUBSCRIPTION, "on" if subscribed else "off")

    # -- Store: messages -------------------------------------------------------------------

    async def deliver(
        self,
        user: str,
        data: bytes,
        folder: str = INBOX,
        flags: Iterable[str] = (),
        internal_date: float | None = None,
        actor: str | None = None,
        kind: EventKind = EventKind.DELIVERED,
    ) -> int:
        if self.create_users and not await self.user_exists(user):
            await self.ensure_user(user)
        idx = await self._indexes.get(user, folder)
        job = folder_ops.Delivery(to_wire(data), folder_ops.storable(flags), internal_date)
        if idx.lock.locked() or idx in self._batches:
            entry = await self._join_batch(idx, job)
        else:
            async with idx.lock:
                await self._indexes.refresh(idx)
                entry = await self._in_writer(folder_ops.deliver_one, idx, job)
        self._indexes.emit(idx, kind, (entry.info.uid,), actor)
        also = self._all_mail_copy(user, folder)
        if also is not None:
            await self.deliver(user, data, also, flags, internal_date, actor, kind)
        return entry.info.uid

    def _all_mail_copy(self, user: str, folder: str) -> str | None:
        """The ``\\All`` folder a delivery into ``folder`` also goes to (``all_mail``)."""
        if not self.all_mail:
            return None
        special = layout.read_special_use(layout.user_dir(self.root, user))
        return all_mail_copy(normalize_folder_name(folder), special)

    async def deliver_all(
        self,
        user: str,
        folder: str,
        messages: list[NewMessage],
        actor: str | None = None,
        kind: EventKind = EventKind.APPENDED,
    ) -> list[int]:
        idx = await self._indexes.get(user, folder)
        jobs = [
            folder_ops.Delivery(to_wire(m.data), folder_ops.storable(m.flags), m.internal_date)
            for m in messages
        ]
        async with idx.lock:
            await self._indexes.refresh(idx)
            entries = await self._in_writer(folder_ops.deliver_all, idx, jobs)
        uids = [e.info.uid for e in entries]
        self._indexes.emit(idx, kind, uids, actor)
        also = self._all_mail_copy(user, folder)
        if also is not None:
            await self.deliver_all(user, also, messages, actor, kind)
        return uids

    async def usage(self, user: str) -> Usage:
        return Usage.total((await self.folder_usage(user)).values())

    async def folder_usage(self, user: str, fresh: bool = False) -> dict[str, Usage]:
        out = {}
        for info in await self.list_folders(user):
            try:
                idx = await self._indexes.get(user, info.name)
                async with idx.lock:
                    await self._indexes.refresh(idx, force=fresh)  # fresh: three stats
                    octets, count = idx.usage()
            except NoSuchFolder:  # deleted meanwhile
                continue
            out[info.name] = Usage(octets, count)
        return out

    def quota_lock_path(self, user: str) -> Path | None:
        return layout.user_dir(self.root, user) / QUOTA_LOCK_NAME

    async def _in_writer(self, fn: Callable[..., T], *args: object) -> T:
        """Run a delivery in one of the store's ``DELIVERY_THREADS`` threads."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(DELIVERY_THREADS, "mailsrv-deliver")
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def _join_batch(self, idx: FolderIndex, job: folder_ops.Delivery) -> Entry:
        """The folder is busy: wait with the other deliveries arriving meanwhile, and go in
        with them under one dot-lock and one uidlist append (``folder_ops.deliver_many``)."""
        batch = self._batches.get(idx)
        if batch is None:
            batch = self._batches[idx] = []
            task = asyncio.get_running_loop().create_task(self._deliver_batch(idx))
            self._batch_tasks.add(task)
            task.add_done_callback(self._batch_tasks.discard)
        done: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # even when its caller has gone
        batch.append((job, done))
        return await asyncio.shield(done)  # a caller that gives up leaves the others be

    async def _deliver_batch(self, idx: FolderIndex) -> None:
        batch: list[_Queued] = []
        try:
            async with idx.lock:
                batch = self._batches.pop(idx)
                await self._indexes.refresh(idx)
                jobs = [job for job, _ in batch]
                results = await self._in_writer(folder_ops.deliver_many, idx, jobs)
        except BaseException as exc:
            batch = batch or self._batches.pop(idx, [])
            failure = exc if isinstance(exc, Exception) else StoreBusy("delivery interrupted")
            for _, done in batch:
                if not done.done():
                    done.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, done), result in zip(batch, results, strict=True):
            if done.done():
                continue
            if isinstance(result, Exception):
                done.set_exception(result)
            else:
                done.set_result(result)

    async def open(self, user: str, folder: str = INBOX) -> MaildirMailbox:
        idx = await self._indexes.get(user, folder)
        async with idx.lock:
            # Look at the disk now (three stats): a POP3 login or SELECT right after another
            # process (a worker, ``mailsrv deliver``) acknowledged a message must see it.
            await self._indexes.refresh(idx, force=True)
        box = MaildirMailbox(self._indexes, idx)
        self._indexes.hold(idx, box)
        self._watcher.ensure_started()
        return box

    def subscribe(self, user: str | None = None) -> Subscription:
        self._watcher.ensure_started()
        return self._hub.subscribe(user)

    def publish(self, event: StoreEvent) -> None:
        self._hub.publish(event)

    async def reset(self) -> None:
        """Every user gone at once: each root is renamed aside (atomic, so no session or
        other process sees half a mailbox) and the renamed trees are deleted in a background
        thread; ``close()`` waits for that deletion."""
        self._indexes.drop_all()
        self._folder_names.clear()
        graves = [g for g in self._leftovers() if g not in self._removing]
        for user in await self.list_users():
            graves.append(self._trash(self.root / user, USER_TRASH_PREFIX))
        if graves:
            self._remove_in_background(graves)
        self._hub.publish(StoreEvent("", "", EventKind.RESET))

    def _remove_in_background(self, graves: list[Path]) -> None:
        self._removing.update(graves)
        fut = asyncio.get_running_loop().run_in_executor(None, _remove_trees, graves)
        self._removals.add(fut)

        def done(f: asyncio.Future[None]) -> None:
            self._removals.discard(f)
            self._removing.difference_update(graves)

        fut.add_done_callback(done)

    async def close(self) -> None:
        if self._batch_tasks:
            await asyncio.gather(*self._batch_tasks, return_exceptions=True)
        if self._writer is not None:
            self._writer.shutdown(wait=False)
            self._writer = None
        if self._removals:
            await asyncio.gather(*self._removals)
        await self._watcher.stop()
        self._indexes.close_caches()
