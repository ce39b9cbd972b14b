"""The grammar of LIST (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819), LSUB
and STATUS (RFC 9051 §6.3.11, with STATUS=SIZE, QUOTA's DELETED-STORAGE and CONDSTORE's
HIGHESTMODSEQ): the commands that name mailboxes and ask about them."""

from __future__ import annotations

from mailsrv.imap.commands import Command, ListCommand, Status
from mailsrv.imap.lexer import Lexer, ParseError
from mailsrv.imap.tokens import Atom

_STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "SIZE",
        "DELETED",
        "DELETED-STORAGE",
        "HIGHESTMODSEQ",
        "MAILBOXID",  # RFC 8474 §4
    }
)
_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})


def _atoms(lx: Lexer) -> tuple[str, ...]:
    """``(A B C)`` of atoms, upper-cased."""
    items = lx.token_list()
    if not all(isinstance(i, Atom) for i in items):
        raise ParseError("expected a list of atoms")
    return tuple(i.value.upper() for i in items if isinstance(i, Atom))


def parse_list(lx: Lexer, tag: str, uid: bool) -> Command:
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


def parse_lsub(lx: Lexer, tag: str, uid: bool) -> Command:
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


def parse_status(lx: Lexer, tag: str, uid: bool) -> Command:
    lx.sp()
    mailbox = lx.astring()
    lx.sp()
    return Status(tag, mailbox, _status_items(lx.token_list()))
