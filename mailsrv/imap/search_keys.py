"""The values a parsed SEARCH works with (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 4731).

A ``SearchProgram`` is a tree of small frozen key nodes plus the ESEARCH return options;
``SearchItem`` is what the session knows about one message and ``SearchContext`` what it
knows about the mailbox. ``parse_search`` (search.py) builds programs, ``matches``
(search_match.py) runs them.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mailsrv.imap.esearch_results import Partial, ReturnOptions
from mailsrv.imap.search_headers import SENT, HeaderIndex, address_field
from mailsrv.imap.sequence_set import SequenceSet

SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")


class SearchError(ValueError):
    """A SEARCH the session must refuse: ``status`` is BAD (syntax) or NO (BADCHARSET)."""

    def __init__(
        self, message: str, *, code: str | None = None, status: Literal["BAD", "NO"] = "BAD"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class Needs(enum.IntEnum):
    """How much of each message a program reads: nothing, the header, or all of it."""

    NONE = 0
    HEADER = 1
    FULL = 2


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class HasFlag:
    """ANSWERED / DELETED / ... / KEYWORD x, or (``present=False``) their UN- forms."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class Recent:
    """RECENT (``seen=None``), NEW (recent and unseen) or OLD (``recent=False``)."""

    recent: bool = True
    new: bool = False


@dataclass(frozen=True, slots=True)
class Size:
    larger: bool
    octets: int


@dataclass(frozen=True, slots=True)
class DateKey:
    """BEFORE/ON/SINCE (internal date), SENTBEFORE/SENTON/SENTSINCE (Date header) or
    SAVEDBEFORE/SAVEDON/SAVEDSINCE (the save date, RFC 8514 §4)."""

    op: Literal["before", "on", "since"]
    date: dt.date
    sent: bool = False
    saved: bool = False


@dataclass(frozen=True, slots=True)
class Within:
    """OLDER n / YOUNGER n (RFC 5032): internal date more / at most n seconds ago."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class HeaderText:
    """FROM/TO/CC/BCC/SUBJECT/HEADER: a header field contains ``text`` ("" = is present).

    ``addresses`` (the FROM/TO/CC/BCC keys, not HEADER) compares the field's addresses
    written in their normal form, so comments and odd spacing inside an address still match.
    """

    name: str
    text: str
    addresses: bool = False

    @property
    def field(self) -> str:
        """The name of the values this key reads from ``search_headers.field_values``."""
        return address_field(self.name) if self.addresses else self.name.upper()


@dataclass(frozen=True, slots=True)
class BodyText:
    """BODY (``with_header=False``) or TEXT: the decoded message text contains ``text``."""

    text: str
    with_header: bool = False


@dataclass(frozen=True, slots=True)
class InSet:
    """A sequence set (``uid=False``), ``UID set``, or ``$`` (``set.uses_saved``)."""

    set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class ModSeq:
    """MODSEQ n (RFC 7162 §3.1.5): the message's mod-sequence is at least ``value``."""

    value: int


@dataclass(frozen=True, slots=True)
class ObjectId:
    """EMAILID id / THREADID id (RFC 8474 §6)."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Not:
    key: Key


@dataclass(frozen=True, slots=True)
class Or:
    left: Key
    right: Key


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[Key, ...]


Key = (
    All
    | HasFlag
    | Recent
    | Size
    | DateKey
    | Within
    | HeaderText
    | BodyText
    | InSet
    | ModSeq
    | ObjectId
    | Not
    | Or
    | And
)


@dataclass(frozen=True, slots=True)
class SearchProgram:
    """A parsed SEARCH: the criteria, the charset, and the RFC 4731 RETURN options.

    ``returns`` is None for a plain SEARCH (untagged ``* SEARCH``), else the options in
    upper case; ``RETURN ()`` means ``("ALL",)``. ``partial`` is RFC 9394's range.
    """

    key: Key
    charset: str = "US-ASCII"
    returns: tuple[str, ...] | None = None
    partial: Partial | None = None

    @property
    def return_options(self) -> ReturnOptions:
        """The RETURN options as ``esearch_results`` takes them (none given: ALL)."""
        return ReturnOptions(self.returns or ("ALL",), self.partial)

    @property
    def esearch(self) -> bool:
        return self.returns is not None

    @property
    def save(self) -> bool:
        return self.returns is not None and "SAVE" in self.returns

    @property
    def uses_saved(self) -> bool:
        return _any(self.key, lambda k: isinstance(k, InSet) and k.set.uses_saved)

    @property
    def uses_modseq(self) -> bool:
        """A MODSEQ key: the answer carries the highest mod-sequence (RFC 7162 §3.1.5)."""
        return _any(self.key, lambda k: isinstance(k, ModSeq))

    @property
    def uses_savedate(self) -> bool:
        return _any(self.key, lambda k: isinstance(k, DateKey) and k.saved)

    @property
    def uses_thread_id(self) -> bool:
        return _any(self.key, lambda k: isinstance(k, ObjectId) and k.kind == "THREADID")

    def needs(self) -> Needs:
        """How much of each message matching needs (the session reads only that)."""
        if _any(self.key, lambda k: isinstance(k, BodyText)):
            return Needs.FULL
        if _any(
            self.key, lambda k: isinstance(k, HeaderText) or (isinstance(k, DateKey) and k.sent)
        ):
            return Needs.HEADER
        return Needs.NONE

    def header_names(self) -> frozenset[str]:
        """The header fields the program looks at (upper case); ``search_headers.SENT`` (the
        Date field) for SENTBEFORE/SENTON/SENTSINCE."""
        names: set[str] = set()
        _collect_names(self.key, names)
        return frozenset(names)


def _collect_names(key: Key, names: set[str]) -> None:
    if isinstance(key, HeaderText):
        names.add(key.field)
    elif isinstance(key, DateKey) and key.sent:
        names.add(SENT)
    elif isinstance(key, Not):
        _collect_names(key.key, names)
    elif isinstance(key, Or):
        _collect_names(key.left, names)
        _collect_names(key.right, names)
    elif isinstance(key, And):
        for k in key.keys:
            _collect_names(k, names)


def _any(key: Key, test: Callable[[Key], bool]) -> bool:
    if test(key):
        return True
    if isinstance(key, Not):
        return _any(key.key, test)
    if isinstance(key, Or):
        return _any(key.left, test) or _any(key.right, test)
    if isinstance(key, And):
        return any(_any(k, test) for k in key.keys)
    return False


@dataclass(frozen=True, slots=True)
class SearchItem:
    """One message as SEARCH sees it. ``wire`` holds what ``needs()`` asked for: None,
    the header (ending with its blank line), or the whole message, in wire form."""

    seq: int
    uid: int
    flags: frozenset[str]
    size: int
    internal_date: float
    recent: bool = False
    wire: bytes | None = None
    modseq: int = 0
    guid: str = ""  # the message's GUID (``MessageInfo.message_guid``): EMAILID
    saved: float = 0.0  # the save date (RFC 8514), looked up only for SAVED* keys
    thread: str = ""  # the thread's seed (THREADID), looked up only for THREADID keys


@dataclass(frozen=True, slots=True)
class SearchContext:
    """The mailbox around a search: highest seq/UID for ``*``, the saved result for ``$``
    (UIDs), the time zone for date keys (None: the server's local zone) and "now" for
    OLDER/YOUNGER. ``headers`` is an optional HeaderIndex the session keeps per mailbox;
    ``cache`` keeps per-search work (sequence intervals) between messages."""

    max_seq: int
    max_uid: int
    saved: frozenset[int] = frozenset()
    tz: dt.tzinfo | None = None
    now: float | None = None
    headers: HeaderIndex | None = None
    cache: dict[object, object] = field(default_factory=dict, compare=False, repr=False)
