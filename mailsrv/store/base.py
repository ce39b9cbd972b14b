"""The contract every store implements and every session relies on.

A ``Store`` holds the users' folders. ``Store.open()`` gives a ``Mailbox`` handle on one folder;
every session gets its own handle, but handles on the same folder share one in-process index, so
a ``snapshot()`` is cheap when nothing changed.

UIDs are assigned in delivery order and never reused while UIDVALIDITY stays; message bytes are
always handed out in wire form (CRLF line ends), and ``MessageInfo.size`` is the length of exactly
those bytes (RFC 3501 RFC822.SIZE, RFC 1939 octet counts before dot-stuffing).

Every change goes out on the event feed (``Store.subscribe``) as a ``StoreEvent``: sessions use
it to wake up and re-sync (IDLE, NOOP), the console shows it as a timeline. Changes made on disk
by another process arrive as ``EventKind.EXTERNAL`` within about a second.

Flags are plain strings: the system flags below and keywords (atoms such as ``$Forwarded``).
``\\Recent`` is per session and never reaches a store.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from mailsrv.store.session_lock import SessionLock

SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
SYSTEM_FLAGS: frozenset[str] = frozenset({SEEN, ANSWERED, FLAGGED, DELETED, DRAFT})

INBOX = "INBOX"
HIERARCHY_DELIMITER = "/"

#: Folders whose deliveries are not copied into the ``\\All`` folder (Gmail keeps spam and
#: the bin out of All Mail).
NOT_IN_ALL_MAIL = frozenset({"\\All", "\\Junk", "\\Trash"})


def all_mail_copy(target: str, special_use: Mapping[str, str]) -> str | None:
    """The ``\\All`` folder (RFC 6154) that a delivery into ``target`` is also copied into, for
    a store made with ``all_mail=True``; ``special_use`` maps folder names to attributes."""
    if special_use.get(target) in NOT_IN_ALL_MAIL:
        return None
    return next((name for name, attr in special_use.items() if attr == "\\All"), None)


#: Special-use folders created for every new user (RFC 6154 attribute -> folder name).
DEFAULT_SPECIAL_FOLDERS: dict[str, str] = {
    "\\Sent": "Sent",
    "\\Drafts": "Drafts",
    "\\Trash": "Trash",
    "\\Junk": "Junk",
    "\\Archive": "Archive",
}


class StoreError(Exception):
    """Base of every store failure; the sessions map these to NO / -ERR replies in one place."""


class NoSuchUser(StoreError):
    pass


class NoSuchFolder(StoreError):
    pass


class FolderExists(StoreError):
    pass


class InvalidName(StoreError):
    """A folder or user name that is unsafe or not allowed (``..``, NUL, ``.`` in Maildir++ ...)."""


class MessageGone(StoreError):
    """The message was expunged (by another session or process) since the caller's snapshot."""


class MessageTooLarge(StoreError):
    pass


class OverQuota(StoreError):
    """Saving would take the user over a quota limit (``resource``: STORAGE or MESSAGE)."""

    def __init__(self, resource: str) -> None:
        super().__init__(f"over {resource.lower()} quota")
        self.resource = resource


class StoreBusy(StoreError):
    """A lock could not be taken in time (another process holds it): try again later."""


class FlagMode(enum.Enum):
    """How ``Mailbox.store_flags`` combines the given flags with current ones (RFC 3501 §6.4.6)."""

    ADD = "+"
    REMOVE = "-"
    REPLACE = ""


class EventKind(enum.Enum):
    DELIVERED = "delivered"  # new message by SMTP / deliver CLI / fixture API
    APPENDED = "appended"  # new message by IMAP APPEND
    COPIED = "copied"  # new messages in a destination folder by COPY
    MOVED = "moved"  # messages left a folder by MOVE (event on source; COPIED on destination)
    FLAGS = "flags"
    EXPUNGED = "expunged"
    FOLDER_CREATED = "folder_created"
    FOLDER_DELETED = "folder_deleted"
    FOLDER_RENAMED = "folder_renamed"
    SUBSCRIPTION = "subscription"  # subscribed or unsubscribed (detail: "on" or "off")
    FOLDERS = "folders"  # folders were made or removed on disk by someone else (folder "")
    FETCHED = "fetched"  # a message's content was read (for the teaching timeline only)
    EXTERNAL = "external"  # changed on disk by someone else: re-sync the folder
    RESET = "reset"  # the whole store was wiped (test fixture reset)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """One message as a listing knows it, without reading the file."""

    uid: int
    key: str  # the Maildir base name (unique, stable while the message lives)
    flags: frozenset[str]
    size: int  # octets in wire form (CRLF line ends)
    internal_date: float  # seconds since the epoch (delivery time)
    #: RFC 7162 mod-sequence: raised by every change of the message's flags (0: not yet known)
    modseq: int = 0
    #: The message's GUID when it is not its key: a copy's, made from another message (the
    #: uidlist record's ``G`` field, as Dovecot writes it); "" when the key is the GUID
    guid: str = ""

    @property
    def message_guid(self) -> str:
        """What names this message wherever it is copied or moved (RFC 8474 EMAILID)."""
        return self.guid or self.key


@dataclass(frozen=True, slots=True)
class FolderSnapshot:
    """A folder's state at one moment. ``messages`` is sorted by UID."""

    name: str
    uidvalidity: int
    uidnext: int
    messages: tuple[MessageInfo, ...]
    version: int  # changes whenever anything in the folder changed; equal versions, equal state
    #: RFC 7162 HIGHESTMODSEQ: the highest mod-sequence of any change (flags, new, expunged)
    highestmodseq: int = 0
    #: The folder's GUID (RFC 8474 MAILBOXID): the dovecot-uidlist header's, "" when it has none
    mailbox_id: str = ""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message of a ``Store.deliver_all``: bytes (LF or CRLF), flags, internal date."""

    data: bytes
    flags: frozenset[str] = frozenset()
    internal_date: float | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What a user's mail takes: octets in wire form and messages, over every folder."""

    octets: int = 0
    messages: int = 0

    @staticmethod
    def total(usages: Iterable[Usage]) -> Usage:
        octets = messages = 0
        for u in usages:
            octets, messages = octets + u.octets, messages + u.messages
        return Usage(octets, messages)


@dataclass(frozen=True, slots=True)
class FolderInfo:
    name: str  # IMAP name with "/" as delimiter, "INBOX" for the root
    special_use: str | None = None  # "\\Sent", "\\Trash", ...
    subscribed: bool = True
    has_children: bool = False


@dataclass(frozen=True, slots=True)
class StoreEvent:
    user: str
    folder: str
    kind: EventKind
    uids: tuple[int, ...] = ()
    actor: str | None = None  # session id ("imap-7", "pop3-3", "smtp-2", "api") of whoever did it
    detail: str = ""  # e.g. new name for FOLDER_RENAMED, flags for FLAGS, destination for MOVED
    time: float = 0.0


class EventSubscription(Protocol):
    """A subscriber's queue of events. Closing it stops delivery."""

    async def get(self) -> StoreEvent: ...

    def get_nowait(self) -> StoreEvent | None: ...

    def close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[StoreEvent]: ...


class Mailbox(Protocol):
    """A handle on one folder of one user."""

    @property
    def user(self) -> str: ...

    @property
    def name(self) -> str: ...

    async def snapshot(self, *, fresh: bool = False) -> FolderSnapshot:
        """The folder's current state, re-read from disk only when it changed there; ``fresh``
        looks at the disk now, even when it was looked at a moment ago (IMAP NOOP, CHECK)."""
        ...

    async def read(self, uid: int) -> bytes:
        """The whole message in wire form (CRLF). Raises ``MessageGone``."""
        ...

    async def read_header(self, uid: int) -> bytes:
        """The header block in wire form, including the blank line that ends it."""
        ...

    async def store_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode,
        actor: str | None = None,
        *,
        unchangedsince: int | None = None,
    ) -> list[MessageInfo]:
        """Change flags; returns the messages as they are now (gone ones are left out, and
        with ``unchangedsince`` those whose mod-sequence is above it, which are not changed:
        RFC 7162 §3.1.3)."""
        ...

    async def expunge(self, uids: Iterable[int], actor: str | None = None) -> list[int]:
        """Remove these messages; returns the UIDs actually removed, ascending."""
        ...

    async def copy(
        self, uids: Iterable[int], dest: str, actor: str | None = None
    ) -> list[tuple[int, int]]:
        """Copy to folder ``dest`` (flags kept); returns (source uid, destination uid) pairs."""
        ...

    async def move(
        self, uids: Iterable[int], dest: str, actor: str | None = None
    ) -> list[tuple[int, int]]:
        """Move to folder ``dest``: copy then expunge here, atomically per message (rename)."""
        ...

    async def vanished_since(self, modseq: int) -> list[int] | None:
        """UIDs expunged after mod-sequence ``modseq`` (RFC 7162 VANISHED), ascending; None
        when the store no longer knows them all (the caller reports the UIDs that are missing)."""
        ...

    async def get_cached(self, uid: int, key: str) -> bytes | None:
        """Protocol-specific parsed data cached per message (e.g. an IMAP BODYSTRUCTURE)."""
        ...

    async def set_cached(self, uid: int, key: str, value: bytes) -> None: ...

    async def save_date(self, uid: int) -> float:
        """When the message was saved in this folder (RFC 8514 SAVEDATE), seconds since the
        epoch; ``MessageGone`` if it is not there."""
        ...

    async def thread_seeds(self, links: Sequence[tuple[str, tuple[str, ...]]]) -> list[str]:
        """The thread of each message given by its links (own Message-ID, or "guid:" and its
        GUID; parents oldest first), over all the user's folders, decided the first time and
        never changed (RFC 8474 §5.2; ``threads.py``): the Message-ID that seeds the thread."""
        ...

    def claim_recent(self, uidvalidity: int, top_uid: int, *, readonly: bool) -> int:
        """Claim the messages up to UID ``top_uid`` as recent (RFC 3501 §2.3.2) for the calling
        session, once for every process on the store (``store/recent.py``); ``readonly``
        (EXAMINE, STATUS) only looks. Returns the watermark before the claim: the caller's
        UIDs above it are recent for it, the others were seen first elsewhere. Never goes
        backwards while UIDVALIDITY stays; a claim with another UIDVALIDITY starts over.
        Blocking but small (at most one tiny file operation), so views call it inline."""
        ...

    async def uidvalidity_bump(self) -> int:
        """Give the folder a new UIDVALIDITY (fault injection, repair); returns it."""
        ...


@runtime_checkable
class BatchCache(Protocol):
    """A mailbox that reads and writes its per-message cache for many messages at once."""

    async def get_cached_many(
        self, uids: Sequence[int], keys: Collection[str]
    ) -> dict[tuple[int, str], bytes]: ...

    async def set_cached_many(self, rows: Iterable[tuple[int, str, bytes]]) -> None: ...


class Store(Protocol):
    """All users' mail. One per process, shared by every session."""

    async def ensure_user(self, user: str) -> None:
        """Create the user's INBOX and special-use folders if they are missing."""
        ...

    async def user_exists(self, user: str) -> bool: ...

    async def list_users(self) -> list[str]: ...

    async def delete_user(self, user: str) -> None: ...

    async def list_folders(self, user: str) -> list[FolderInfo]: ...

    async def list_subscriptions(self, user: str) -> list[str]:
        """Every subscribed name, sorted, including names whose folder is gone (RFC 9051 §6.3.7:
        deleting a folder does not unsubscribe it)."""
        ...

    async def create_folder(
        self, user: str, name: str, special_use: str | None = None, *, subscribe: bool = True
    ) -> None:
        """Make a folder; ``subscribe`` adds it to the subscriptions (IMAP CREATE does not)."""
        ...

    async def delete_folder(self, user: str, name: str) -> None:
        """Remove a folder (its children stay); its subscription stays too."""
        ...

    async def rename_folder(self, user: str, old: str, new: str) -> None:
        """Rename (with children); renaming INBOX moves its messages (RFC 3501 §6.3.5)."""
        ...

    async def access_key(self, user: str, folder: str, *, create: bool) -> bytes | None:
        """The URLAUTH mailbox access key (RFC 4467 §3) of the user's ``folder`` (a normalized
        name); ``create`` makes a random one when there is none."""
        ...

    async def reset_access_keys(self, user: str, folder: str | None = None) -> None:
        """Drop the access key of ``folder`` (None: all the user's): RESETKEY (RFC 4467 §4)."""
        ...

    async def set_subscribed(self, user: str, name: str, subscribed: bool) -> None:
        """Subscribe an existing folder (else ``NoSuchFolder``) or unsubscribe any name."""
        ...

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
        """Store one message atomically; returns its UID. Line ends may be LF or CRLF."""
        ...

    async def deliver_all(
        self,
        user: str,
        folder: str,
        messages: list[NewMessage],
        actor: str | None = None,
        kind: EventKind = EventKind.APPENDED,
    ) -> list[int]:
        """Store every message or none (RFC 3502 MULTIAPPEND), even across a crash; their
        UIDs, ascending and in the given order. Raises ``NoSuchFolder`` or a ``StoreError``."""
        ...

    async def usage(self, user: str) -> Usage:
        """Octets and messages over all the user's folders (quota), from cached listings."""
        ...

    async def folder_usage(self, user: str, fresh: bool = False) -> dict[str, Usage]:
        """Octets and messages of each of the user's folders (quota rules per mailbox); with
        ``fresh``, each listing is first checked against the disk (another process's saves)."""
        ...

    def quota_lock_path(self, user: str) -> Path | None:
        """The file whose lock makes a quota check and its save one step across processes
        (``mailsrv.store.quota_lock``); None when no other process can save for the user."""
        ...

    async def open(self, user: str, folder: str = INBOX) -> Mailbox:
        """A handle on an existing folder. Raises ``NoSuchFolder``."""
        ...

    def subscribe(self, user: str | None = None) -> EventSubscription:
        """Events of one user (or of everyone, for the console), from now on."""
        ...

    async def lock_session(self, user: str) -> SessionLock | None:
        """The user's POP3 session lock (``pop3_lock_session``), held across processes and
        hosts (``mailsrv.store.session_lock``); None while another session holds it."""
        ...

    def publish(self, event: StoreEvent) -> None:
        """Send an event to subscribers (the store does it itself for its own changes)."""
        ...

    async def reset(self) -> None:
        """Remove every user's mail (the test fixture's fast reset)."""
        ...

    async def close(self) -> None: ...


def apply_flags(current: frozenset[str], flags: Iterable[str], mode: FlagMode) -> frozenset[str]:
    """The flag set after a STORE of ``flags`` in ``mode``."""
    given = frozenset(flags)
    if mode is FlagMode.ADD:
        return current | given
    if mode is FlagMode.REMOVE:
        return current - given
    return given
