"""SEARCH criteria parsing (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 4731 ESEARCH, RFC 5182 $).

``parse_search(args, utf8=...)`` takes the command's arguments as generic tokens and
handles both prefixes itself: ``RETURN (MIN MAX ALL COUNT SAVE)`` and ``CHARSET x``
(US-ASCII and UTF-8; anything else is ``NO [BADCHARSET (US-ASCII UTF-8)]``). Keys are
case-insensitive, several keys are an implicit AND, a parenthesized list groups keys.
Errors raise ``SearchError`` carrying the reason for the BAD response.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from mailsrv.imap.esearch_results import Partial, ReturnError, parse_return_options
from mailsrv.imap.search_headers import HeaderIndex
from mailsrv.imap.search_keys import (
    SUPPORTED_CHARSETS,
    All,
    And,
    BodyText,
    DateKey,
    HasFlag,
    HeaderText,
    InSet,
    Key,
    ModSeq,
    Needs,
    Not,
    ObjectId,
    Or,
    Recent,
    SearchContext,
    SearchError,
    SearchItem,
    SearchProgram,
    Size,
    Within,
)
from mailsrv.imap.search_match import esearch_data, matches
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.tokens import Atom, Token

__all__ = [
    "HeaderIndex",
    "Needs",
    "SearchContext",
    "SearchError",
    "SearchItem",
    "SearchProgram",
    "esearch_data",
    "matches",
    "parse_search",
]

#: Deeper nesting of NOT/OR/parentheses than this is refused (keeps recursion bounded).
MAX_DEPTH = 100
#: LARGER/SMALLER take a number64 (RFC 9051); bigger numbers are a syntax error.
MAX_NUMBER64 = 2**63 - 1

_SEQUENCE = re.compile(r"[0-9*:,]+|\$")
_OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_SIMPLE: dict[str, Key] = {
    "ALL": All(),
    "RECENT": Recent(),
    "NEW": Recent(new=True),
    "OLD": Recent(recent=False),
}
_HEADER_KEYS = {"FROM", "TO", "CC", "BCC", "SUBJECT"}
_DATE_KEYS = {
    "BEFORE": ("before", False),
    "ON": ("on", False),
    "SINCE": ("since", False),
    "SENTBEFORE": ("before", True),
    "SENTON": ("on", True),
    "SENTSINCE": ("since", True),
}
#: RFC 8514 §4: the save date.
_SAVED_KEYS = {"SAVEDBEFORE": "before", "SAVEDON": "on", "SAVEDSINCE": "since"}


def parse_search(args: list[Token], *, utf8: bool = False) -> SearchProgram:
    """Parse SEARCH arguments (after the command name) into a program."""
    pos = 0
    returns: tuple[str, ...] | None = None
    partial: Partial | None = None
    if _is_atom(args, pos, "RETURN"):
        if pos + 1 >= len(args) or not isinstance(args[pos + 1], list):
            raise SearchError("RETURN needs a parenthesized list of options")
        returns, partial = _return_options(args[pos + 1])  # type: ignore[arg-type]
        pos += 2
    charset = "UTF-8" if utf8 else "US-ASCII"
    if _is_atom(args, pos, "CHARSET"):
        if pos + 1 >= len(args):
            raise SearchError("CHARSET needs a charset name")
        charset = _charset(args[pos + 1])
        pos += 2
    parser = _KeyParser(args[pos:])
    keys = parser.all_keys()
    if not keys:
        raise SearchError("SEARCH needs at least one search key")
    key = keys[0] if len(keys) == 1 else And(tuple(keys))
    return SearchProgram(key=key, charset=charset, returns=returns, partial=partial)


def _is_atom(args: list[Token], pos: int, word: str) -> bool:
    if pos >= len(args):
        return False
    tok = args[pos]
    return isinstance(tok, Atom) and tok.value.upper() == word


def _return_options(items: list[Token]) -> tuple[tuple[str, ...], Partial | None]:
    try:
        parsed = parse_return_options(items)
    except ReturnError as exc:
        raise SearchError(str(exc)) from None
    return parsed.options, parsed.partial


def _charset(tok: Token) -> str:
    if isinstance(tok, list):
        raise SearchError("CHARSET needs a charset name")
    name = (tok.value if isinstance(tok, Atom) else tok.decode("ascii", "replace")).upper()
    if name not in SUPPORTED_CHARSETS:
        raise SearchError(
            f"charset {name} is not supported",
            code="BADCHARSET (" + " ".join(SUPPORTED_CHARSETS) + ")",
            status="NO",
        )
    return name


def _show(tok: Token) -> str:
    if isinstance(tok, Atom):
        return tok.value[:40]
    if isinstance(tok, bytes):
        return '"' + tok[:40].decode("utf-8", "replace") + '"'
    return "(...)"


class _KeyParser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def all_keys(self, depth: int = 0) -> list[Key]:
        keys: list[Key] = []
        while self.pos < len(self.tokens):
            keys.append(self.key(depth))
        return keys

    def next(self, what: str) -> Token:
        if self.pos >= len(self.tokens):
            raise SearchError(f"missing {what}")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def key(self, depth: int) -> Key:
        if depth > MAX_DEPTH:
            raise SearchError("search keys nested too deeply")
        tok = self.next("search key")
        if isinstance(tok, list):
            inner = _KeyParser(tok)
            keys = inner.all_keys(depth + 1)
            if not keys:
                raise SearchError("empty parenthesized search key")
            return keys[0] if len(keys) == 1 else And(tuple(keys))
        if isinstance(tok, bytes):
            raise SearchError(f"expected a search key, got {_show(tok)}")
        word = tok.value.upper()
        if _SEQUENCE.fullmatch(word):
            return InSet(_sequence(tok.value))
        handler = self._HANDLERS.get(word)
        if handler is not None:
            return handler(self, word, depth)
        if word in _SIMPLE:
            return _SIMPLE[word]
        if word in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[word]
            return HasFlag(flag, present)
        raise SearchError(f"unknown search key {tok.value[:40]}")

    def string(self, what: str) -> str:
        tok = self.next(what)
        if isinstance(tok, list):
            raise SearchError(f"{what} must be a string")
        data = tok.value.encode() if isinstance(tok, Atom) else tok
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SearchError(f"{what} is not valid UTF-8") from None

    def atom(self, what: str) -> str:
        tok = self.next(what)
        if not isinstance(tok, Atom):
            if isinstance(tok, bytes):
                return tok.decode("utf-8", "replace")
            raise SearchError(f"{what} expected")
        return tok.value

    def _header(self, word: str, depth: int) -> Key:
        text = self.string(f"{word} string")
        return HeaderText(word, text, addresses=word != "SUBJECT")

    def _header_named(self, word: str, depth: int) -> Key:
        name = self.string("HEADER field name")
        if not name or any(c <= " " or c == ":" for c in name):
            raise SearchError("HEADER needs a valid field name")
        return HeaderText(name.upper(), self.string("HEADER string"))

    def _body(self, word: str, depth: int) -> Key:
        return BodyText(self.string(f"{word} string"), with_header=word == "TEXT")

    def _keyword(self, word: str, depth: int) -> Key:
        flag = self.atom("KEYWORD flag")
        if not flag or flag.startswith("\\") or any(c in '(){ %*"]' for c in flag):
            raise SearchError(f"invalid keyword {flag[:40]}")
        return HasFlag(flag, word == "KEYWORD")

    def _size(self, word: str, depth: int) -> Key:
        return Size(word == "LARGER", _number(self.atom(f"{word} number")))

    def _date(self, word: str, depth: int) -> Key:
        op, sent = _DATE_KEYS[word]
        return DateKey(op, _date(self.atom(f"{word} date")), sent=sent)  # type: ignore[arg-type]

    def _saved(self, word: str, depth: int) -> Key:
        return DateKey(_SAVED_KEYS[word], _date(self.atom(f"{word} date")), saved=True)  # type: ignore[arg-type]

    def _savedate_supported(self, word: str, depth: int) -> Key:
        return All()  # RFC 8514 §4: every mailsrv mailbox keeps save dates

    def _within(self, word: str, depth: int) -> Key:
        seconds = _number(self.atom(f"{word} interval"))
        if seconds < 1:
            raise SearchError(f"{word} needs a positive number of seconds")
        return Within(word == "OLDER", seconds)

    def _not(self, word: str, depth: int) -> Key:
        return Not(self.key(depth + 1))

    def _or(self, word: str, depth: int) -> Key:
        left = self.key(depth + 1)
        return Or(left, self.key(depth + 1))

    def _uid(self, word: str, depth: int) -> Key:
        tok = self.next("UID sequence set")
        if not isinstance(tok, Atom) or not _SEQUENCE.fullmatch(tok.value):
            raise SearchError("UID needs a sequence set")
        return InSet(_sequence(tok.value), uid=True)

    def _modseq(self, word: str, depth: int) -> Key:
        """MODSEQ ["entry-name" entry-type] mod-sequence (RFC 7162 §3.1.5)."""
        tok = self.next("MODSEQ value")
        if isinstance(tok, bytes):  # the entry name of a per-flag mod-sequence
            kind = self.atom("MODSEQ entry type").lower()
            if kind not in ("priv", "shared", "all"):
                raise SearchError("MODSEQ entry type must be priv, shared or all")
            tok = self.next("MODSEQ value")
        if not isinstance(tok, Atom):
            raise SearchError("MODSEQ needs a number")
        value = _number(tok.value)
        return ModSeq(value)

    def _object_id(self, word: str, depth: int) -> Key:
        """EMAILID objectid / THREADID objectid (RFC 8474 §6)."""
        tok = self.next(f"{word} value")
        value = ""
        if isinstance(tok, Atom):
            value = tok.value
        elif isinstance(tok, bytes):
            value = tok.decode("ascii", "replace")
        if not _OBJECTID.fullmatch(value):
            raise SearchError(f"{word} needs an object id")
        return ObjectId(word, value)

    _HANDLERS: dict[str, Callable[[_KeyParser, str, int], Key]] = {
        "FROM": _header,
        "TO": _header,
        "CC": _header,
        "BCC": _header,
        "SUBJECT": _header,
        "HEADER": _header_named,
        "BODY": _body,
        "TEXT": _body,
        "KEYWORD": _keyword,
        "UNKEYWORD": _keyword,
        "LARGER": _size,
        "SMALLER": _size,
        "OLDER": _within,
        "YOUNGER": _within,
        "NOT": _not,
        "OR": _or,
        "UID": _uid,
        "MODSEQ": _modseq,
        "EMAILID": _object_id,
        **dict.fromkeys(_SAVED_KEYS, _saved),
        "SAVEDATESUPPORTED": _savedate_supported,
        "THREADID": _object_id,
        **dict.fromkeys(_DATE_KEYS, _date),
    }


def _sequence(text: str) -> SequenceSet:
    try:
        return SequenceSet.parse(text)
    except ValueError as exc:
        raise SearchError(str(exc)) from None


def _number(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise SearchError(f"expected a number, got {text[:40]}")
    value = int(text)
    if value > MAX_NUMBER64:
        raise SearchError("number too large")
    return value


def _date(text: str) -> dt.date:
    m = _DATE.fullmatch(text)
    month = _MONTHS.get(m.group(2).upper()) if m else None
    if m is None or month is None:
        raise SearchError(f"invalid date {text[:40]} (expected e.g. 1-Feb-2024)")
    try:
        return dt.date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        raise SearchError(f"invalid date {text[:40]}") from None
