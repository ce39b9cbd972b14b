"""From one complete command (line segments and literals) to a command value (RFC 9051 §9).

``parse_command`` never raises: grammar errors come back as ``InvalidCommand`` with the tag (when
one was read) and a reason. Arguments that are a language of their own (SEARCH keys) are handed
on as ``Token`` trees for ``search.py``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable

from mailsrv.imap.append_parser import parse_append
from mailsrv.imap.commands import (
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Compress,
    Copy,
    Create,
    Delete,
    Enable,
    Expunge,
    Fetch,
    FetchItem,
    GetQuota,
    Id,
    Idle,
    InvalidCommand,
    ListCommand,
    Login,
    Logout,
    Namespace,
    Noop,
    Rename,
    Search,
    Select,
    SetQuota,
    StartTls,
    Status,
    StoreCommand,
    Subscribe,
    UidExpunge,
    Unselect,
    Unsubscribe,
)
from mailsrv.imap.fetch_parser import parse_fetch_items
from mailsrv.imap.lexer import Lexer, ParseError
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.tokens import Atom
from mailsrv.store.base import SYSTEM_FLAGS, FlagMode

_SYSTEM_FLAGS = {f.upper(): f for f in SYSTEM_FLAGS}
_STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED", "DELETED-STORAGE"}
)
_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DATE_TIME = re.compile(
    rb"([ \d]?\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)
#: The commands without arguments, by name.
_SIMPLE: dict[str, Callable[[str], Command]] = {
    c.name: c
    for c in (
        Capability,
        Noop,
        Logout,
        StartTls,
        Check,
        Close,
        Unselect,
        Expunge,
        Idle,
        Namespace,
    )
}

Handler = Callable[[Lexer, str, bool], Command]


def parse_command(
    data: bytes, memo: dict[bytes, tuple[FetchItem, ...]] | None = None
) -> Command | InvalidCommand:
    """Parse one command: ``tag SP name [args] CRLF`` with literals spliced in. ``memo`` keeps
    FETCH item lists already parsed, by their text (a client sends the same list again and
    again); without one, nothing is remembered."""
    lx = Lexer(data)
    try:
        tag = lx.tag()
    except ParseError:
        return InvalidCommand("*", "Missing or invalid tag")
    name = ""
    try:
        lx.sp()
        name = lx.atom().upper()
        uid = False
        if name == "UID":
            lx.sp()
            name = lx.atom().upper()
            uid = True
            handler = _UID_HANDLERS.get(name)
        elif (simple := _SIMPLE.get(name)) is not None:
            lx.end()
            return simple(tag)
        else:
            handler = _HANDLERS.get(name)
        if handler is None:
            return InvalidCommand(tag, "Unknown command", name=("UID " if uid else "") + name)
        cmd = _fetch(lx, tag, uid, memo) if handler is _fetch else handler(lx, tag, uid)
        lx.end()
        return cmd
    except ParseError as exc:
        return InvalidCommand(tag, f"Error in IMAP command {name}: {exc}".strip(), name=name)


# -- shared pieces ----------------------------------------------------------------------------


def _sequence(lx: Lexer) -> SequenceSet:
    text = lx.word()
    try:
        return SequenceSet.parse(text)
    except ValueError as exc:
        raise ParseError(str(exc)) from None


def parse_flag(text: str, *, allow_recent: bool = False) -> str:
    """A flag as stored: system flags in canonical case, keywords as given (atoms)."""
    if text.startswith("\\"):
        flag = _SYSTEM_FLAGS.get(text.upper())
        if flag is None:
            if allow_recent and text.upper() == "\\RECENT":
                return "\\Recent"
            raise ParseError(f"invalid system flag {text}")
        return flag
    if not text or any(c in text for c in '(){ %*"\\]') or not text.isascii():
        raise ParseError(f"invalid keyword {text}")
    return text


def _flag_list(lx: Lexer) -> tuple[str, ...]:
    items = lx.token_list()
    flags = []
    for item in items:
        if not isinstance(item, Atom):
            raise ParseError("flags must be atoms")
        flags.append(parse_flag(item.value))
    return tuple(dict.fromkeys(flags))


def parse_date_time(raw: bytes) -> float:
    """``"17-Jul-1996 02:44:25 -0700"`` as seconds since the epoch (RFC 3501 date-time)."""
    m = _DATE_TIME.match(raw)
    if m is None:
        raise ParseError("invalid date-time")
    day, mon, year, hh, mm, ss, sign, zh, zm = (g.decode() for g in m.groups())
    month = _MONTHS.get(mon.upper())
    if month is None or not (1 <= int(day) <= 31) or int(hh) > 23 or int(mm) > 59:
        raise ParseError("invalid date-time")
    try:
        seconds = calendar.timegm((int(year), month, int(day), int(hh), int(mm), int(ss), 0, 0, 0))
    except (ValueError, OverflowError):
        raise ParseError("invalid date-time") from None
    offset = (int(zh) * 60 + int(zm)) * 60
    return float(seconds - offset if sign == "+" else seconds + offset)


def _atoms(lx: Lexer) -> tuple[str, ...]:
    """``(A B C)`` of atoms, upper-cased."""
    items = lx.token_list()
    if not all(isinstance(i, Atom) for i in items):
        raise ParseError("expected a list of atoms")
    return tuple(i.value.upper() for i in items if isinstance(i, Atom))


# -- commands ---------------------------------------------------------------------------------


def _login(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    user = lx.astring()
    lx.sp()
    return Login(tag, user, lx.astring())


def _authenticate(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    mechanism = lx.atom().upper()
    initial = None
    if lx.skip_sp():
        initial = lx.word().encode()
    return Authenticate(tag, mechanism, initial)


def _compress(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    return Compress(tag, lx.atom().upper())


def _enable(lx: Lexer, tag: str, uid: bool) -> Command:
    caps = []
    lx.sp()
    caps.append(lx.atom().upper())
    while lx.skip_sp():
        caps.append(lx.atom().upper())
    return Enable(tag, tuple(caps))


def _id(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    if lx.accept(b"NIL"):
        return Id(tag, None)
    lx.expect(b"(")
    params: list[tuple[bytes, bytes | None]] = []
    while lx.peek() != 0x29:
        if params:
            lx.sp()
        key = lx.string()
        lx.sp()
        params.append((key, lx.nstring()))
        if len(params) > 30:
            raise ParseError("too many ID parameters")
    lx.expect(b")")
    return Id(tag, tuple(params))


def _select(lx: Lexer, tag: str, uid: bool, *, readonly: bool = False) -> Command:
    lx.sp()
    mailbox = lx.astring()
    if lx.skip_sp() and lx.token_list():
        raise ParseError("SELECT parameters are not supported")
    return Select(tag, mailbox, readonly, "EXAMINE" if readonly else "SELECT")


def _create(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    mailbox = lx.astring()
    uses: tuple[str, ...] = ()
    if lx.skip_sp():
        params = lx.token_list()
        if len(params) != 2 or (params[0] != Atom("USE") and params[0] != Atom("use")):
            raise ParseError("only the USE parameter is supported")
        values = params[1]
        if not isinstance(values, list) or not all(isinstance(v, Atom) for v in values):
            raise ParseError("USE takes a list of special-use attributes")
        uses = tuple(v.value for v in values if isinstance(v, Atom))
    return Create(tag, mailbox, uses)


def _mailbox_only(lx: Lexer, tag: str, kind: type[Delete | Subscribe | Unsubscribe]) -> Command:
    lx.sp()
    return kind(tag, lx.astring())


def _rename(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    old = lx.astring()
    lx.sp()
    return Rename(tag, old, lx.astring())


def _list(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    selection: tuple[str, ...] = ()
    if lx.peek() == 0x28:
        selection = _atoms(lx)
        if not set(selection) <= _LIST_SELECT:
            raise ParseError("unknown LIST selection option")
        lx.sp()
    reference = lx.astring()
    lx.sp()
    if lx.peek() == 0x28:
        lx.expect(b"(")
        patterns = [lx.list_mailbox()]
        while lx.skip_sp():
            patterns.append(lx.list_mailbox())
        lx.expect(b")")
    else:
        patterns = [lx.list_mailbox()]
    returns: list[str] = []
    status_items: tuple[str, ...] = ()
    if lx.skip_sp():
        if not lx.accept(b"RETURN"):
            raise ParseError("expected RETURN")
        lx.sp()
        items = lx.token_list()
        i = 0
        while i < len(items):
            item = items[i]
            if not isinstance(item, Atom):
                raise ParseError("bad RETURN option")
            option = item.value.upper()
            if option == "STATUS" and i + 1 < len(items) and isinstance(items[i + 1], list):
                status_items = _status_items(items[i + 1])
                i += 1
            elif option not in _LIST_RETURN:
                raise ParseError(f"unknown RETURN option {option}")
            returns.append(option)
            i += 1
    return ListCommand(tag, reference, tuple(patterns), selection, tuple(returns), status_items)


def _lsub(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    reference = lx.astring()
    lx.sp()
    return ListCommand(tag, reference, (lx.list_mailbox(),), name="LSUB")


def _status_items(items: object) -> tuple[str, ...]:
    if not isinstance(items, list) or not items:
        raise ParseError("expected a list of status items")
    out = []
    for item in items:
        if not isinstance(item, Atom) or item.value.upper() not in _STATUS_ITEMS:
            raise ParseError("unknown status item")
        out.append(item.value.upper())
    return tuple(out)


def _status(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    mailbox = lx.astring()
    lx.sp()
    return Status(tag, mailbox, _status_items(lx.token_list()))


def _append(lx: Lexer, tag: str, uid: bool) -> Command:
    return parse_append(lx, tag, _flag_list, parse_date_time)


def _fetch(
    lx: Lexer, tag: str, uid: bool, memo: dict[bytes, tuple[FetchItem, ...]] | None = None
) -> Command:
    lx.sp()
    sequence = _sequence(lx)
    lx.sp()
    # A client sends the same item list command after command: the items of a line that
    # holds no literal are parsed once and remembered (they are immutable).
    rest = lx.data[lx.pos :]
    items = memo.get(rest) if memo is not None else None
    if items is not None:
        lx.pos = len(lx.data)
        return Fetch(tag, uid, sequence, items)
    items = parse_fetch_items(lx)
    if lx.skip_sp():
        raise ParseError("FETCH modifiers are not supported")
    lx.end()
    if memo is not None and len(rest) <= _ITEMS_TEXT_MAX and b"{" not in rest:
        if len(memo) >= _ITEMS_MEMO_MAX:
            memo.clear()
        memo[rest] = items
    return Fetch(tag, uid, sequence, items)


#: Entries in a FETCH item memo before it starts over, and the longest text remembered.
_ITEMS_MEMO_MAX = 256
_ITEMS_TEXT_MAX = 512


def _store(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    sequence = _sequence(lx)
    lx.sp()
    word = lx.word().upper()
    mode = {"+": FlagMode.ADD, "-": FlagMode.REMOVE}.get(word[:1], FlagMode.REPLACE)
    base = word.lstrip("+-")
    if base not in ("FLAGS", "FLAGS.SILENT") or len(word) - len(base) > 1:
        raise ParseError("expected FLAGS, +FLAGS or -FLAGS")
    lx.sp()
    if lx.peek() == 0x28:
        flags = _flag_list(lx)
    else:
        names = [parse_flag(lx.word())]
        while lx.skip_sp():
            names.append(parse_flag(lx.word()))
        flags = tuple(dict.fromkeys(names))
    return StoreCommand(tag, uid, sequence, mode, base.endswith(".SILENT"), flags)


def _copy(lx: Lexer, tag: str, uid: bool, *, move: bool = False) -> Command:
    lx.sp()
    sequence = _sequence(lx)
    lx.sp()
    return Copy(tag, uid, sequence, lx.astring(), move, "MOVE" if move else "COPY")


def _search(lx: Lexer, tag: str, uid: bool) -> Command:
    args = lx.rest()
    if not args:
        raise ParseError("missing search criteria")
    return Search(tag, uid, tuple(args))


def _quota(lx: Lexer, tag: str, name: str) -> Command:
    lx.sp()
    return GetQuota(tag, lx.astring(), name)


def _setquota(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    root = lx.astring()
    lx.sp()
    lx.token_list()  # the limits asked for: refused whatever they are
    return SetQuota(tag, root)


def _uid_expunge(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    return UidExpunge(tag, _sequence(lx))


_HANDLERS: dict[str, Handler] = {
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "ENABLE": _enable,
    "COMPRESS": _compress,
    "ID": _id,
    "SELECT": _select,
    "EXAMINE": lambda lx, tag, uid: _select(lx, tag, uid, readonly=True),
    "CREATE": _create,
    "DELETE": lambda lx, tag, uid: _mailbox_only(lx, tag, Delete),
    "SUBSCRIBE": lambda lx, tag, uid: _mailbox_only(lx, tag, Subscribe),
    "UNSUBSCRIBE": lambda lx, tag, uid: _mailbox_only(lx, tag, Unsubscribe),
    "RENAME": _rename,
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy,
    "MOVE": lambda lx, tag, uid: _copy(lx, tag, uid, move=True),
    "SEARCH": _search,
    "GETQUOTA": lambda lx, tag, uid: _quota(lx, tag, "GETQUOTA"),
    "GETQUOTAROOT": lambda lx, tag, uid: _quota(lx, tag, "GETQUOTAROOT"),
    "SETQUOTA": _setquota,
}
_UID_HANDLERS: dict[str, Handler] = {
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy,
    "MOVE": lambda lx, tag, uid: _copy(lx, tag, uid, move=True),
    "SEARCH": _search,
    "EXPUNGE": lambda lx, tag, uid: _uid_expunge(lx, tag, uid),
}
