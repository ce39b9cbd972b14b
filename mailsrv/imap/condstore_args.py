"""The grammar RFC 7162 (CONDSTORE, QRESYNC) adds to SELECT, FETCH and STORE (§3.1, §3.2, §7).

``SELECT box (CONDSTORE)``, ``SELECT box (QRESYNC (uidvalidity modseq [known-uids
[(known-seqs known-uids)]]))``, ``FETCH set items (CHANGEDSINCE n [VANISHED])`` and
``STORE set (UNCHANGEDSINCE n) ...``. Every malformed number is a ``ParseError`` naming what was
wrong, so the client gets a BAD with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsrv.imap.lexer import Lexer, ParseError
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.tokens import Atom, Token

#: RFC 7162 mod-sequence values are unsigned 63-bit numbers.
MAX_MODSEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Qresync:
    """The QRESYNC parameter of SELECT/EXAMINE (RFC 7162 §3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    #: (message sequence numbers, their UIDs) the client knows: seq-match-data
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class SelectParams:
    condstore: bool = False
    qresync: Qresync | None = None


def modseq_value(text: str, what: str, *, zero: bool = False) -> int:
    """A mod-sequence (``zero``: mod-sequence-valzer, which allows 0)."""
    if not text.isdigit() or len(text) > 19:
        raise ParseError(f"{what}: invalid mod-sequence {text[:30]!r}")
    value = int(text)
    if value > MAX_MODSEQ or (value == 0 and not zero):
        raise ParseError(f"{what}: mod-sequence out of range")
    return value


def _atom(token: Token, what: str) -> str:
    if not isinstance(token, Atom):
        raise ParseError(f"{what}: expected an atom")
    return token.value


def _set(token: Token, what: str) -> SequenceSet:
    try:
        value = SequenceSet.parse(_atom(token, what))
    except ValueError as exc:
        raise ParseError(f"{what}: {exc}") from None
    if value.uses_saved or any(None in r for r in value.ranges):
        raise ParseError(f"{what}: only numbers (no $ or *)")
    return value


def _count(value: SequenceSet) -> int:
    return sum(high - low + 1 for low, high in value.intervals(2**32 - 1))


def parse_select_params(lx: Lexer) -> SelectParams:
    """The parenthesized parameter list after the mailbox name."""
    items = lx.token_list()
    condstore = False
    qresync: Qresync | None = None
    i = 0
    while i < len(items):
        name = _atom(items[i], "SELECT parameter").upper()
        if name == "CONDSTORE":
            condstore = True
        elif name == "QRESYNC" and i + 1 < len(items) and isinstance(items[i + 1], list):
            if qresync is not None:
                raise ParseError("QRESYNC given twice")
            i += 1
            qresync = _qresync(items[i])
        else:
            raise ParseError(f"unknown SELECT parameter {name[:30]}")
        i += 1
    return SelectParams(condstore, qresync)


def _qresync(args: Token) -> Qresync:
    if not isinstance(args, list) or not 2 <= len(args) <= 4:
        raise ParseError("QRESYNC takes (uidvalidity modseq [known-uids [seq-match-data]])")
    text = _atom(args[0], "QRESYNC uidvalidity")
    if not text.isdigit() or not 0 < int(text) < 2**32:
        raise ParseError("QRESYNC: invalid UIDVALIDITY")
    modseq = modseq_value(_atom(args[1], "QRESYNC"), "QRESYNC")
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    rest = args[2:]
    if rest and not isinstance(rest[0], list):
        known = _set(rest[0], "QRESYNC known UIDs")
        rest = rest[1:]
    if rest:
        pair = rest[0]
        if not isinstance(pair, list) or len(pair) != 2 or len(rest) > 1:
            raise ParseError("QRESYNC: sequence match data is (sequence-set uid-set)")
        seqs, uids = _set(pair[0], "QRESYNC sequence match"), _set(pair[1], "QRESYNC uid match")
        if _count(seqs) != _count(uids):
            raise ParseError("QRESYNC: the sequence match sets differ in length")
        match = (seqs, uids)
    return Qresync(int(text), modseq, known, match)


@dataclass(frozen=True, slots=True)
class FetchModifiers:
    changedsince: int | None = None
    vanished: bool = False


def parse_fetch_modifiers(lx: Lexer) -> FetchModifiers:
    """``(CHANGEDSINCE n [VANISHED])`` after the FETCH items (RFC 7162 §3.1.4.1, §3.2.6)."""
    items = lx.token_list()
    changedsince: int | None = None
    vanished = False
    i = 0
    while i < len(items):
        name = _atom(items[i], "FETCH modifier").upper()
        if name == "CHANGEDSINCE" and i + 1 < len(items) and changedsince is None:
            i += 1
            changedsince = modseq_value(_atom(items[i], "CHANGEDSINCE"), "CHANGEDSINCE")
        elif name == "VANISHED" and not vanished:
            vanished = True
        else:
            raise ParseError(f"unknown or repeated FETCH modifier {name[:30]}")
        i += 1
    if vanished and changedsince is None:
        raise ParseError("VANISHED needs CHANGEDSINCE")
    return FetchModifiers(changedsince, vanished)


def parse_store_modifiers(lx: Lexer) -> int:
    """``(UNCHANGEDSINCE n)`` before the STORE data item (RFC 7162 §3.1.3)."""
    items = lx.token_list()
    if len(items) != 2 or _atom(items[0], "STORE modifier").upper() != "UNCHANGEDSINCE":
        raise ParseError("the STORE modifier is (UNCHANGEDSINCE mod-sequence)")
    return modseq_value(_atom(items[1], "UNCHANGEDSINCE"), "UNCHANGEDSINCE", zero=True)
