"""IMAP commands as frozen values (RFC 3501 §6, RFC 9051 §6).

Each command is a class of its own (the session's registry is keyed by it); commands that
differ only by a flag share one (SELECT/EXAMINE, COPY/MOVE, LIST/LSUB, and a command and its
UID form). The parser turns one complete command into one of these, or into ``InvalidCommand``
(which keeps the tag when one was read, so the session can answer ``tag BAD reason``). Mailbox
names are kept as the raw wire bytes: whether they are modified UTF-7 or UTF-8 depends on the
session (ENABLE UTF8=ACCEPT), so the session decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mailsrv.imap.condstore_args import Qresync
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.tokens import SectionSpec, Token
from mailsrv.store.base import FlagMode


@dataclass(frozen=True, slots=True)
class InvalidCommand:
    """A command that could not be parsed. ``tag`` is ``"*"`` when none could be read."""

    tag: str
    reason: str
    #: Response code, e.g. ``TOOBIG`` for an over-limit APPEND literal (answered with NO).
    code: str | None = None
    #: The command name when it was read (for fault hooks and the bad-command budget).
    name: str = ""


@dataclass(frozen=True, slots=True)
class TagOnly:
    """A command that is its name and its tag alone (``Noop("a1")``). Each one is a plain
    subclass: it inherits the frozen dataclass's methods instead of generating its own, which
    costs ~0.45 ms of import time per class (10 classes: ~4 ms of start-up)."""

    tag: str
    name: ClassVar[str] = ""


class Capability(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "CAPABILITY"


class Noop(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "NOOP"


class Logout(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "LOGOUT"


class StartTls(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "STARTTLS"


class Check(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "CHECK"


class Close(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "CLOSE"


class Unselect(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "UNSELECT"


class Expunge(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "EXPUNGE"


class Idle(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "IDLE"


class Namespace(TagOnly):
    __slots__ = ()
    name: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True, slots=True)
class Login:
    tag: str
    user: bytes
    password: bytes
    name: str = "LOGIN"


@dataclass(frozen=True, slots=True)
class Authenticate:
    tag: str
    mechanism: str
    #: SASL-IR initial response (base64 text; ``b"="`` is an empty one), None when absent.
    initial: bytes | None = None
    name: str = "AUTHENTICATE"


@dataclass(frozen=True, slots=True)
class Enable:
    tag: str
    capabilities: tuple[str, ...]
    name: str = "ENABLE"


@dataclass(frozen=True, slots=True)
class Compress:
    """COMPRESS mechanism (RFC 4978 §3); only ``DEFLATE`` is defined."""

    tag: str
    mechanism: str
    name: str = "COMPRESS"


@dataclass(frozen=True, slots=True)
class Id:
    tag: str
    params: tuple[tuple[bytes, bytes | None], ...] | None
    name: str = "ID"


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT or EXAMINE (``readonly``, named ``EXAMINE``)."""

    tag: str
    mailbox: bytes
    readonly: bool = False
    name: str = "SELECT"
    condstore: bool = False  # the (CONDSTORE) parameter (RFC 7162 §3.1.8)
    qresync: Qresync | None = None  # the (QRESYNC (...)) parameter (RFC 7162 §3.2.5)


@dataclass(frozen=True, slots=True)
class Create:
    tag: str
    mailbox: bytes
    special_use: tuple[str, ...] = ()
    name: str = "CREATE"


@dataclass(frozen=True, slots=True)
class Delete:
    tag: str
    mailbox: bytes
    name: ClassVar[str] = "DELETE"


@dataclass(frozen=True, slots=True)
class Subscribe:
    tag: str
    mailbox: bytes
    name: ClassVar[str] = "SUBSCRIBE"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    tag: str
    mailbox: bytes
    name: ClassVar[str] = "UNSUBSCRIBE"


@dataclass(frozen=True, slots=True)
class Rename:
    tag: str
    old: bytes
    new: bytes
    name: str = "RENAME"


@dataclass(frozen=True, slots=True)
class ListCommand:
    """LIST (with RFC 5258 LIST-EXTENDED options) or LSUB."""

    tag: str
    reference: bytes
    patterns: tuple[bytes, ...]
    selection: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()
    name: str = "LIST"


@dataclass(frozen=True, slots=True)
class Status:
    tag: str
    mailbox: bytes
    items: tuple[str, ...]
    name: str = "STATUS"


@dataclass(frozen=True, slots=True)
class CatenateUrl:
    """A CATENATE ``URL`` part (RFC 4469 §3): the IMAP URL as sent."""

    url: bytes


@dataclass(frozen=True, slots=True)
class CatenateText:
    """A CATENATE ``TEXT`` part: bytes to put in as they are (``binary``: a literal8)."""

    text: bytes
    binary: bool = False


CatenatePart = CatenateUrl | CatenateText


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND (RFC 3502 allows several): its literal, or the CATENATE parts
    it is made of (RFC 4469)."""

    flags: tuple[str, ...]
    internal_date: float | None
    message: bytes | tuple[CatenatePart, ...]
    binary: bool = False  # sent as a literal8 (``~{n}``, RFC 3516)


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND with one message or, by MULTIAPPEND (RFC 3502), several: all go in or none."""

    tag: str
    mailbox: bytes
    messages: tuple[AppendMessage, ...]
    name: str = "APPEND"


@dataclass(frozen=True, slots=True)
class GetQuota:
    """GETQUOTA root, GETQUOTAROOT mailbox (RFC 9208 §4.2, §4.3)."""

    tag: str
    argument: bytes
    name: str = "GETQUOTA"  # or "GETQUOTAROOT"


@dataclass(frozen=True, slots=True)
class SetQuota:
    """SETQUOTA (RFC 9208 §4.1): parsed so that it gets a clear NO; limits are the admin's."""

    tag: str
    root: bytes
    name: str = "SETQUOTA"


@dataclass(frozen=True, slots=True)
class GenUrlauth:
    """GENURLAUTH (RFC 4467 §9.1): (rump URL, mechanism) pairs."""

    tag: str
    urls: tuple[tuple[bytes, str], ...]
    name: str = "GENURLAUTH"


@dataclass(frozen=True, slots=True)
class ResetKey:
    """RESETKEY [mailbox [mechanism...]] (RFC 4467 §9.2); no mailbox: all of the user's."""

    tag: str
    mailbox: bytes | None
    mechanisms: tuple[str, ...] = ()
    name: str = "RESETKEY"


@dataclass(frozen=True, slots=True)
class UrlFetchItem:
    """One URL of URLFETCH, with RFC 5524's parameters (``extended``: given in parentheses;
    ``body``: BODY, BINARY or None)."""

    url: bytes
    extended: bool = False
    body: str | None = None
    bodypartstructure: bool = False


@dataclass(frozen=True, slots=True)
class UrlFetch:
    """URLFETCH (RFC 4467 §9.3, RFC 5524 §3)."""

    tag: str
    items: tuple[UrlFetchItem, ...]
    name: str = "URLFETCH"


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event group of NOTIFY SET (RFC 5465 §3.1): a mailbox filter and its events."""

    #: ``selected``, ``selected-delayed``, ``inboxes``, ``personal``, ``subscribed``,
    #: ``subtree`` or ``mailboxes`` (lower case).
    filter: str
    mailboxes: tuple[bytes, ...]  # the names ``subtree`` and ``mailboxes`` take, as sent
    events: frozenset[str]  # canonical names (``MessageNew``); empty for NONE
    fetch: tuple[FetchItem, ...] = ()  # MessageNew's fetch attributes (selected only)
    unsupported: tuple[str, ...] = ()  # events asked for that mailsrv does not send


@dataclass(frozen=True, slots=True)
class Notify:
    """NOTIFY NONE (``groups`` None) or NOTIFY SET [STATUS] (RFC 5465 §3.1)."""

    tag: str
    groups: tuple[NotifyGroup, ...] | None
    status: bool = False
    overflow: bool = False  # more mailbox names than mailsrv follows (NOTIFICATIONOVERFLOW)
    name: str = "NOTIFY"


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One fetch attribute. ``name`` is canonical upper case (``BODY.PEEK``, ``RFC822.SIZE``)."""

    name: str
    section: SectionSpec | None = None
    #: ``<start.count>`` of a partial fetch.
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    tag: str
    uid: bool
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    name: str = "FETCH"
    changedsince: int | None = None  # (CHANGEDSINCE n) (RFC 7162 §3.1.4.1)
    vanished: bool = False  # (VANISHED), UID FETCH only (RFC 7162 §3.2.6)


@dataclass(frozen=True, slots=True)
class StoreCommand:
    tag: str
    uid: bool
    sequence: SequenceSet
    mode: FlagMode
    silent: bool
    flags: tuple[str, ...]
    name: str = "STORE"
    unchangedsince: int | None = None  # (UNCHANGEDSINCE n) (RFC 7162 §3.1.3)


@dataclass(frozen=True, slots=True)
class StoreLabels:
    """STORE with ``X-GM-LABELS`` (Gmail's X-GM-EXT-1): labels as sent, atoms or strings."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mode: FlagMode
    silent: bool
    labels: tuple[bytes, ...]
    name: str = "STORE"


@dataclass(frozen=True, slots=True)
class Copy:
    """COPY or MOVE (``move``, named ``MOVE``)."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mailbox: bytes
    move: bool = False
    name: str = "COPY"


@dataclass(frozen=True, slots=True)
class Search:
    tag: str
    uid: bool
    args: tuple[Token, ...]
    name: str = "SEARCH"


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT / UID SORT (RFC 5256 §3, RFC 5267 ESORT): RETURN, criteria, charset and keys are
    parsed by ``sort_cmd.py`` from the tokens."""

    tag: str
    uid: bool
    args: tuple[Token, ...]
    name: str = "SORT"


@dataclass(frozen=True, slots=True)
class Thread:
    """THREAD / UID THREAD (RFC 5256 §4): algorithm, charset and search keys as tokens."""

    tag: str
    uid: bool
    args: tuple[Token, ...]
    name: str = "THREAD"


@dataclass(frozen=True, slots=True)
class CancelUpdate:
    """CANCELUPDATE "tag" ... (RFC 5267 §4.3.5): stop the updates of those searches."""

    tag: str
    tags: tuple[str, ...]
    name: str = "CANCELUPDATE"


@dataclass(frozen=True, slots=True)
class UidExpunge:
    tag: str
    sequence: SequenceSet
    name: str = "EXPUNGE"


Command = (
    Capability
    | Noop
    | Logout
    | StartTls
    | Check
    | Close
    | Unselect
    | Expunge
    | Idle
    | Namespace
    | Login
    | Authenticate
    | Enable
    | Compress
    | Id
    | Select
    | Create
    | Delete
    | Subscribe
    | Unsubscribe
    | Rename
    | ListCommand
    | Status
    | Append
    | GetQuota
    | SetQuota
    | GenUrlauth
    | ResetKey
    | UrlFetch
    | Notify
    | Fetch
    | StoreCommand
    | StoreLabels
    | Copy
    | Search
    | Sort
    | Thread
    | CancelUpdate
    | UidExpunge
)


def command_name(cmd: Command | InvalidCommand) -> str:
    """The name fault hooks and the legal-commands table use: ``"UID FETCH"``, ``"EXAMINE"``."""
    if isinstance(cmd, UidExpunge) or (
        isinstance(cmd, Fetch | StoreCommand | StoreLabels | Copy | Search | Sort | Thread)
        and cmd.uid
    ):
        return "UID " + cmd.name
    return cmd.name
