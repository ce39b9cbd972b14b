"""An in-memory ``Store`` with the same behaviour as the Maildir one, for fast session tests."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailsrv.message.wire import header_end, to_wire
from mailsrv.store.base import (
    DEFAULT_SPECIAL_FOLDERS,
    HIERARCHY_DELIMITER,
    INBOX,
    EventKind,
    FlagMode,
    FolderExists,
    FolderInfo,
    FolderSnapshot,
    InvalidName,
    MessageGone,
    MessageInfo,
    NewMessage,
    NoSuchFolder,
    NoSuchUser,
    StoreEvent,
    Usage,
    all_mail_copy,
    apply_flags,
)
from mailsrv.store.events import EventHub, Subscription
from mailsrv.store.names import check_folder_name, check_user_name, normalize_folder_name
from mailsrv.store.session_lock import HeldInMemory
from mailsrv.store.threads import Links, ThreadTables

_keys = itertools.count(1)


@dataclass(slots=True)
class StoredMessage:
    """One message of a ``MemoryStore`` folder: its info, wire bytes and cached values."""

    info: MessageInfo
    data: bytes
    cache: dict[str, bytes] = field(default_factory=dict)
    saved: float = field(default_factory=time.time)  # RFC 8514 SAVEDATE


@dataclass(slots=True)
class StoredFolder:
    """One folder of a ``MemoryStore`` user: its UID state, attributes and messages."""

    name: str
    uidvalidity: int
    uidnext: int = 1
    special_use: str | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    version: int = 0
    highestmodseq: int = 1  # RFC 7162: raised by every change
    expunged: list[tuple[int, int]] = field(default_factory=list)  # (modseq, uid)
    guid: str = field(default_factory=lambda: secrets.token_hex(16))  # as a uidlist's G field
    recent: tuple[int, int] = (0, 0)  # (uidvalidity, highest UID claimed as \\Recent)

    def bump(self) -> int:
        self.highestmodseq += 1
        self.version += 1
        return self.highestmodseq

    def expunged_now(self, uids: Iterable[int]) -> None:
        value = self.bump()
        self.expunged.extend((value, uid) for uid in uids)


class MemoryFolders:
    """Every user's folders and the event hub: what ``MemoryStore`` and its mailboxes share."""

    def __init__(self, hub: EventHub) -> None:
        self.users: dict[str, dict[str, StoredFolder]] = {}
        #: Subscribed names per user; a name stays subscribed when its folder is deleted.
        self.subscriptions: dict[str, set[str]] = {}
        #: Each user's thread table (RFC 8474 THREADID), in memory only.
        self.threads = ThreadTables()
        self._hub = hub

    def of_user(self, user: str) -> dict[str, StoredFolder]:
        try:
            return self.users[user]
        except KeyError:
            raise NoSuchUser(user) from None

    def folder(self, user: str, name: str) -> StoredFolder:
        name = normalize_folder_name(name)
        try:
            return self.of_user(user)[name]
        except KeyError:
            raise NoSuchFolder(name) from None

    def add(
        self,
        f: StoredFolder,
        data: bytes,
        flags: Iterable[str],
        date: float | None,
        guid: str = "",
    ) -> int:
        """Append a message to ``f``; its new UID. ``guid``: the message's it is a copy of."""
        wire = to_wire(data)
        uid = f.uidnext
        f.uidnext += 1
        modseq = f.bump()
        info = MessageInfo(
            uid, f"m{next(_keys)}", frozenset(flags), len(wire), date or time.time(), modseq, guid
        )
        f.messages[uid] = StoredMessage(info, wire)
        return uid

    def emit(
        self,
        user: str,
        folder: str,
        kind: EventKind,
        uids: Iterable[int],
        actor: str | None,
        detail: str = "",
    ) -> None:
        self._hub.publish(StoreEvent(user, folder, kind, tuple(uids), actor, detail))


class MemoryMailbox:
    def __init__(self, folders: MemoryFolders, user: str, name: str) -> None:
        self._folders = folders
        self._user = user
        self._name = name

    @property
    def user(self) -> str:
        return self._user

    @property
    def name(self) -> str:
        return self._name

    def _folder(self) -> StoredFolder:
        return self._folders.folder(self._user, self._name)

    def _message(self, uid: int) -> StoredMessage:
        try:
            return self._folder().messages[uid]
        except (KeyError, NoSuchFolder):
            raise MessageGone(f"message UID {uid} no longer exists") from None

    async def snapshot(self, *, fresh: bool = False) -> FolderSnapshot:
        f = self._folder()
        msgs = tuple(m.info for _, m in sorted(f.messages.items()))
        return FolderSnapshot(
            f.name, f.uidvalidity, f.uidnext, msgs, f.version, f.highestmodseq, f.guid
        )

    async def vanished_since(self, modseq: int) -> list[int] | None:
        f = self._folder()
        return sorted({uid for value, uid in f.expunged if value > modseq})

    async def read(self, uid: int) -> bytes:
        return self._message(uid).data

    async def read_header(self, uid: int) -> bytes:
        data = self._message(uid).data
        return data[: header_end(data)]

    async def store_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode,
        actor: str | None = None,
        *,
        unchangedsince: int | None = None,
    ) -> list[MessageInfo]:
        f = self._folder()
        flags = frozenset(flags)
        out: list[MessageInfo] = []
        changed: list[int] = []
        modseq = 0
        for uid in sorted(set(uids)):
            m = f.messages.get(uid)
            if m is None or (unchangedsince is not None and m.info.modseq > unchangedsince):
                continue
            new = apply_flags(m.info.flags, flags, mode)
            if new != m.info.flags:
                modseq = modseq or f.bump()
                i = m.info
                m.info = MessageInfo(uid, i.key, new, i.size, i.internal_date, modseq, i.guid)
                changed.append(uid)
            out.append(m.info)
        if changed:
            self._folders.emit(self._user, f.name, EventKind.FLAGS, changed, actor)
        return out

    async def expunge(self, uids: Iterable[int], actor: str | None = None) -> list[int]:
        f = self._folder()
        gone = [uid for uid in sorted(set(uids)) if f.messages.pop(uid, None) is not None]
        if gone:
            f.expunged_now(gone)
            self._folders.emit(self._user, f.name, EventKind.EXPUNGED, gone, actor)
        return gone

    async def copy(
        self, uids: Iterable[int], dest: str, actor: str | None = None
    ) -> list[tuple[int, int]]:
        src = self._folder()
        dst = self._folders.folder(self._user, dest)
        pairs: list[tuple[int, int]] = []
        for uid in sorted(set(uids)):
            m = src.messages.get(uid)
            if m is None:
                continue
            i = m.info
            new_uid = self._folders.add(dst, m.data, i.flags, i.internal_date, i.message_guid)
            dst.messages[new_uid].cache.update(m.cache)
            pairs.append((uid, new_uid))
        if pairs:
            self._folders.emit(self._user, dst.name, EventKind.COPIED, [d for _, d in pairs], actor)
        return pairs

    async def move(
        self, uids: Iterable[int], dest: str, actor: str | None = None
    ) -> list[tuple[int, int]]:
        pairs = await self.copy(uids, dest, actor)
        src = self._folder()
        for uid, _ in pairs:
            src.messages.pop(uid, None)
        if pairs:
            src.expunged_now(uid for uid, _ in pairs)
            self._folders.emit(
                self._user, src.name, EventKind.MOVED, [s for s, _ in pairs], actor, dest
            )
        return pairs

    async def get_cached(self, uid: int, key: str) -> bytes | None:
        return self._message(uid).cache.get(key)

    async def thread_seeds(self, links: Sequence[Links]) -> list[str]:
        return self._folders.threads.of(self._user, None).assign(links)

    async def save_date(self, uid: int) -> float:
        return self._message(uid).saved

    async def set_cached(self, uid: int, key: str, value: bytes) -> None:
        self._message(uid).cache[key] = value

    def claim_recent(self, uidvalidity: int, top_uid: int, *, readonly: bool) -> int:
        try:
            f = self._folder()
        except (NoSuchUser, NoSuchFolder):
            return 0
        held_uidvalidity, mark = f.recent
        previous = mark if held_uidvalidity == uidvalidity else 0
        if not readonly and top_uid > previous:
            f.recent = (uidvalidity, top_uid)
        return previous

    async def uidvalidity_bump(self) -> int:
        f = self._folder()
        f.uidvalidity += 1
        f.version += 1
        self._folders.emit(self._user, f.name, EventKind.EXTERNAL, [], None)
        return f.uidvalidity


class MemoryStore:
    """Everything in dictionaries; same names, rules and events as ``MaildirStore``."""

    def __init__(
        self, special_folders: Mapping[str, str] | None = None, *, all_mail: bool = False
    ) -> None:
        self._hub = EventHub()
        self._folders = MemoryFolders(self._hub)
        #: The special-use folders a new user gets (attribute -> name).
        self.special_folders = dict(
            DEFAULT_SPECIAL_FOLDERS if special_folders is None else special_folders
        )
        #: Every delivery is also copied into the user's ``\\All`` folder (Gmail's All Mail).
        self.all_mail = all_mail
        self._session_locks: set[str] = set()
        self._access_keys: dict[tuple[str, str], bytes] = {}

    # -- internals -------------------------------------------------------------------------

    def _new_folder(self, name: str, special_use: str | None = None) -> StoredFolder:
        return StoredFolder(name, uidvalidity=int(time.time()), special_use=special_use)

    # -- Store -----------------------------------------------------------------------------

    async def ensure_user(self, user: str) -> None:
        check_user_name(user)
        if user in self._folders.users:
            return
        folders = {INBOX: self._new_folder(INBOX)}
        for use, name in self.special_folders.items():
            folders[name] = self._new_folder(name, use)
        self._folders.users[user] = folders
        self._folders.subscriptions[user] = set(folders)

    async def user_exists(self, user: str) -> bool:
        return user in self._folders.users

    async def lock_session(self, user: str) -> HeldInMemory | None:
        if user in self._session_locks:
            return None
        return HeldInMemory(self._session_locks, user)

    async def list_users(self) -> list[str]:
        return sorted(self._folders.users)

    async def delete_user(self, user: str) -> None:
        self._folders.users.pop(user, None)
        self._folders.subscriptions.pop(user, None)
        self._folders.threads.forget(user)

    async def list_folders(self, user: str) -> list[FolderInfo]:
        folders = self._folders.of_user(user)
        subs = self._folders.subscriptions[user]
        names = sorted(folders, key=lambda n: (n != INBOX, n))
        out = []
        for n in names:
            f = folders[n]
            prefix = n + HIERARCHY_DELIMITER
            kids = any(o.startswith(prefix) for o in folders)
            out.append(FolderInfo(n, f.special_use, n in subs, kids))
        return out

    async def access_key(self, user: str, folder: str, *, create: bool) -> bytes | None:
        self._folders.of_user(user)
        key = self._access_keys.get((user, folder))
        if key is None and create:
            key = self._access_keys[(user, folder)] = secrets.token_bytes(16)
        return key

    async def reset_access_keys(self, user: str, folder: str | None = None) -> None:
        for k in [k for k in self._access_keys if k[0] == user and folder in (None, k[1])]:
            del self._access_keys[k]

    async def list_subscriptions(self, user: str) -> list[str]:
        self._folders.of_user(user)
        return sorted(self._folders.subscriptions[user])

    async def create_folder(
        self, user: str, name: str, special_use: str | None = None, *, subscribe: bool = True
    ) -> None:
        name = check_folder_name(name)
        folders = self._folders.of_user(user)
        if name in folders:
            raise FolderExists(name)
        folders[name] = self._new_folder(name, special_use)
        if subscribe:
            self._folders.subscriptions[user].add(name)
        self._folders.emit(user, name, EventKind.FOLDER_CREATED, (), None)

    async def delete_folder(self, user: str, name: str) -> None:
        name = normalize_folder_name(name)
        if name == INBOX:
            raise InvalidName("INBOX cannot be deleted")
        folders = self._folders.of_user(user)
        if folders.pop(name, None) is None:
            raise NoSuchFolder(name)
        self._folders.emit(user, name, EventKind.FOLDER_DELETED, (), None)

    async def rename_folder(self, user: str, old: str, new: str) -> None:
        old = normalize_folder_name(old)
        new = check_folder_name(new)
        folders = self._folders.of_user(user)
        if old not in folders:
            raise NoSuchFolder(old)
        if new in folders:
            raise FolderExists(new)
        moved = [old]
        if old == INBOX:
            src = folders[INBOX]
            dst = self._new_folder(new)
            for m in list(src.messages.values()):
                self._folders.add(dst, m.data, m.info.flags, m.info.internal_date)
            src.messages.clear()
            src.version += 1
            folders[new] = dst
            self._folders.subscriptions[user].add(new)
        else:
            subs = self._folders.subscriptions[user]
            moved = sorted(n for n in folders if n == old or n.startswith(old + "/"))
            for name in moved:
                f = folders.pop(name)
                f.name = new + name[len(old) :]
                folders[f.name] = f
                if name in subs:
                    subs.discard(name)
                    subs.add(f.name)
        for name in moved:  # the folder first, then each child that moved with it
            self._folders.emit(
                user, name, EventKind.FOLDER_RENAMED, (), None, new + name[len(old) :]
            )

    async def set_subscribed(self, user: str, name: str, subscribed: bool) -> None:
        self._folders.of_user(user)
        subs = self._folders.subscriptions[user]
        if subscribed:
            name = self._folders.folder(user, name).name
            subs.add(name)
        else:  # also a name whose folder is gone
            name = normalize_folder_name(name)
            subs.discard(name)
        detail = "on" if subscribed else "off"
        self._folders.emit(user, name, EventKind.SUBSCRIPTION, (), None, detail)

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
        f = self._folders.folder(user, folder)
        uid = self._folders.add(f, data, flags, internal_date)
        self._folders.emit(user, f.name, kind, (uid,), actor)
        also = self._all_mail_copy(user, f.name)
        if also is not None:
            await self.deliver(user, data, also, flags, internal_date, actor, kind)
        return uid

    def _all_mail_copy(self, user: str, folder: str) -> str | None:
        """The ``\\All`` folder a delivery into ``folder`` also goes to (``all_mail``)."""
        if not self.all_mail:
            return None
        folders = self._folders.of_user(user)
        special = {n: x.special_use for n, x in folders.items() if x.special_use}
        return all_mail_copy(folder, special)

    async def deliver_all(
        self,
        user: str,
        folder: str,
        messages: list[NewMessage],
        actor: str | None = None,
        kind: EventKind = EventKind.APPENDED,
    ) -> list[int]:
        f = self._folders.folder(user, folder)
        uids = [self._folders.add(f, m.data, m.flags, m.internal_date) for m in messages]
        self._folders.emit(user, f.name, kind, uids, actor)
        also = self._all_mail_copy(user, f.name)
        if also is not None:
            await self.deliver_all(user, also, messages, actor, kind)
        return uids

    async def usage(self, user: str) -> Usage:
        return Usage.total((await self.folder_usage(user)).values())

    async def folder_usage(self, user: str, fresh: bool = False) -> dict[str, Usage]:
        out = {}
        for name, f in self._folders.of_user(user).items():
            sizes = [m.info.size for m in f.messages.values()]
            out[name] = Usage(sum(sizes), len(sizes))
        return out

    def quota_lock_path(self, user: str) -> Path | None:
        return None  # the store lives in one process: the policy's own lock is enough

    async def open(self, user: str, folder: str = INBOX) -> MemoryMailbox:
        f = self._folders.folder(user, folder)
        return MemoryMailbox(self._folders, user, f.name)

    def subscribe(self, user: str | None = None) -> Subscription:
        return self._hub.subscribe(user)

    def publish(self, event: StoreEvent) -> None:
        self._hub.publish(event)

    async def reset(self) -> None:
        self._folders.users.clear()
        self._folders.subscriptions.clear()
        self._folders.threads = ThreadTables()
        self._access_keys.clear()
        self._hub.publish(StoreEvent("", "", EventKind.RESET))

    async def close(self) -> None:
        return None
