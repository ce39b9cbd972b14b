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
    CancelUpdate,
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
    Login,
    Logout,
    Namespace,
    Noop,
    Rename,
    Search,
    Select,
    SetQuota,
    Sort,
    StartTls,
    StoreCommand,
    StoreLabels,
    Subscribe,
    Thread,
    UidExpunge,
    Unselect,
    Unsubscribe,
)
from mailsrv.imap.condstore_args import (
    parse_fetch_modifiers,
    parse_select_params,
    parse_store_modifiers,
)
from mailsrv.imap.fetch_parser import parse_fetch_items
from mailsrv.imap.lexer import Lexer, ParseError
from mailsrv.imap.mailbox_parser import parse_list, parse_lsub, parse_status
from mailsrv.imap.notify_args import parse_notify
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.tokens import Atom, Token
from mailsrv.imap.urlauth_parser import parse_genurlauth, parse_resetkey, parse_urlfetch
from mailsrv.store.base import SYSTEM_FLAGS, FlagMode

_SYSTEM_FLAGS = {f.upper(): f for f in SYSTEM_FLAGS}
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
    name = "EXAMINE" if readonly else "SELECT"
    if lx.skip_sp():
        params = parse_select_params(lx)
        return Select(tag, mailbox, readonly, name, params.condstore, params.qresync)
    return Select(tag, mailbox, readonly, name)


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
        mods = parse_fetch_modifiers(lx)
        if mods.vanished and not uid:
            raise ParseError("VANISHED is only allowed with UID FETCH")
        return Fetch(tag, uid, sequence, items, "FETCH", mods.changedsince, mods.vanished)
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
    unchangedsince = None
    if lx.peek() == 0x28:
        unchangedsince = parse_store_modifiers(lx)
        lx.sp()
    word = lx.word().upper()
    mode = {"+": FlagMode.ADD, "-": FlagMode.REMOVE}.get(word[:1], FlagMode.REPLACE)
    base = word.lstrip("+-")
    if base in ("X-GM-LABELS", "X-GM-LABELS.SILENT") and len(word) - len(base) <= 1:
        lx.sp()
        raw: list[bytes] = []
        for x in lx.token_list() if lx.peek() == 0x28 else [lx.token()]:
            if isinstance(x, list):
                raise ParseError("labels must be atoms or strings")
            raw.append(x.value.encode() if isinstance(x, Atom) else x)
        return StoreLabels(tag, uid, sequence, mode, base.endswith(".SILENT"), tuple(raw))
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
    silent = base.endswith(".SILENT")
    return StoreCommand(tag, uid, sequence, mode, silent, flags, "STORE", unchangedsince)


def _copy(lx: Lexer, tag: str, uid: bool, *, move: bool = False) -> Command:
    lx.sp()
    sequence = _sequence(lx)
    lx.sp()
    return Copy(tag, uid, sequence, lx.astring(), move, "MOVE" if move else "COPY")


def _rest(lx: Lexer, missing: str) -> tuple[Token, ...]:
    """The rest of the line as tokens, which must not be empty (ParseError "missing ...")."""
    args = lx.rest()
    if not args:
        raise ParseError("missing " + missing)
    return tuple(args)


def _search(lx: Lexer, tag: str, uid: bool) -> Command:
    return Search(tag, uid, _rest(lx, "search criteria"))


def _sort(lx: Lexer, tag: str, uid: bool) -> Command:
    return Sort(tag, uid, _rest(lx, "sort criteria"))


def _thread(lx: Lexer, tag: str, uid: bool) -> Command:
    return Thread(tag, uid, _rest(lx, "threading algorithm"))


def _cancel_update(lx: Lexer, tag: str, uid: bool) -> Command:
    tags = []
    while lx.skip_sp():
        tags.append(lx.string().decode("utf-8", "replace"))
    if not tags:
        raise ParseError("CANCELUPDATE needs the tags of the searches to cancel")
    return CancelUpdate(tag, tuple(tags))


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
    "LIST": parse_list,
    "LSUB": parse_lsub,
    "STATUS": parse_status,
    "APPEND": _append,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy,
    "MOVE": lambda lx, tag, uid: _copy(lx, tag, uid, move=True),
    "SEARCH": _search,
    "SORT": _sort,
    "THREAD": _thread,
    "CANCELUPDATE": _cancel_update,
    "GETQUOTA": lambda lx, tag, uid: _quota(lx, tag, "GETQUOTA"),
    "GETQUOTAROOT": lambda lx, tag, uid: _quota(lx, tag, "GETQUOTAROOT"),
    "SETQUOTA": _setquota,
    "GENURLAUTH": parse_genurlauth,
    "RESETKEY": parse_resetkey,
    "URLFETCH": parse_urlfetch,
    "NOTIFY": lambda lx, tag, uid: parse_notify(lx, tag),
}
_UID_HANDLERS: dict[str, Handler] = {
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy,
    "MOVE": lambda lx, tag, uid: _copy(lx, tag, uid, move=True),
    "SEARCH": _search,
    "SORT": _sort,
    "THREAD": _thread,
    "EXPUNGE": lambda lx, tag, uid: _uid_expunge(lx, tag, uid),
}
