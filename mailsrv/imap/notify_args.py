"""The NOTIFY command's grammar (RFC 5465 §8): ``NOTIFY NONE`` and ``NOTIFY SET [STATUS]``
with its event groups, parsed straight from the lexer (MessageNew's fetch attributes are FETCH's
own grammar).

What can be checked without the session is checked here and answered BAD with a reason: the
filter names, a duplicate ``selected`` filter, an empty list, MessageNew and MessageExpunge
apart or FlagChange without them for the selected mailbox (as Dovecot 2.3 checks: only there
does the RFC's pairing matter, other mailboxes get STATUS either way). Events that mailsrv does
not implement, or does not know, are kept by name so that the handler can answer
``NO [BADEVENT (...)]`` (RFC 5465 §3.1), which is not a syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsrv.imap.commands import FetchItem, Notify, NotifyGroup
from mailsrv.imap.fetch_parser import parse_fetch_items
from mailsrv.imap.lexer import Lexer, ParseError

MESSAGE_NEW = "MessageNew"
MESSAGE_EXPUNGE = "MessageExpunge"
FLAG_CHANGE = "FlagChange"
MAILBOX_NAME = "MailboxName"
SUBSCRIPTION_CHANGE = "SubscriptionChange"
#: The events mailsrv sends, in the order BADEVENT lists them.
SUPPORTED_EVENTS = (MESSAGE_NEW, MESSAGE_EXPUNGE, FLAG_CHANGE, MAILBOX_NAME, SUBSCRIPTION_CHANGE)
#: Events RFC 5465 defines that need METADATA or ANNOTATE, which mailsrv does not have.
_UNSUPPORTED_EVENTS = ("AnnotationChange", "MailboxMetadataChange", "ServerMetadataChange")
_EVENTS = {e.upper(): e for e in SUPPORTED_EVENTS + _UNSUPPORTED_EVENTS}
#: The filters that name no mailbox, and the two that take mailbox names.
_PLAIN_FILTERS = frozenset({"selected", "selected-delayed", "inboxes", "personal", "subscribed"})
_NAMED_FILTERS = frozenset({"subtree", "mailboxes"})
#: Mailbox names in one NOTIFY command; past this it is NO [NOTIFICATIONOVERFLOW], as
#: Dovecot answers (every name is checked against every event of the user's other folders).
MAX_NAMES = 100


@dataclass(frozen=True, slots=True)
class _Events:
    names: frozenset[str]
    fetch: tuple[FetchItem, ...]
    unknown: tuple[str, ...]


def parse_notify(lx: Lexer, tag: str) -> Notify:
    """``NOTIFY NONE`` or ``NOTIFY SET [STATUS] event-group *(SP event-group)``."""
    lx.sp()
    word = lx.atom().upper()
    if word == "NONE":
        return Notify(tag, None)
    if word != "SET":
        raise ParseError("expected SET or NONE")
    lx.sp()
    status = lx.accept(b"STATUS")
    if status:
        lx.sp()
    groups = [_group(lx)]
    while lx.skip_sp():
        groups.append(_group(lx))
    if sum(1 for g in groups if g.filter.startswith("selected")) > 1:
        raise ParseError("Duplicate selected filter")
    if sum(len(g.mailboxes) for g in groups) > MAX_NAMES:
        return Notify(tag, tuple(groups), status, overflow=True)
    return Notify(tag, tuple(groups), status)


def _group(lx: Lexer) -> NotifyGroup:
    """``"(" filter-mailboxes SP events ")"``."""
    lx.expect(b"(")
    kind = lx.atom().lower()
    mailboxes: tuple[bytes, ...] = ()
    if kind in _NAMED_FILTERS:
        lx.sp()
        mailboxes = _mailboxes(lx)
    elif kind not in _PLAIN_FILTERS:
        raise ParseError(f"unknown mailbox filter {kind}")
    if lx.peek() == 0x29:
        raise ParseError(f"the {kind} filter needs a list of events or NONE")
    lx.sp()
    selected = kind.startswith("selected")
    events = _events(lx, selected=selected)
    lx.expect(b")")
    return NotifyGroup(kind, mailboxes, events.names, events.fetch, events.unknown)


def _mailboxes(lx: Lexer) -> tuple[bytes, ...]:
    """``one-or-more-mailbox``: a mailbox, or a parenthesized list of at least one."""
    if lx.peek() != 0x28:
        return (lx.astring(),)
    lx.expect(b"(")
    names = [lx.astring()]
    while lx.skip_sp():
        names.append(lx.astring())
    lx.expect(b")")
    return tuple(names)


def _events(lx: Lexer, *, selected: bool) -> _Events:
    """``"(" event *(SP event) ")"`` or ``NONE``."""
    if lx.peek() != 0x28:
        if lx.atom().upper() != "NONE":
            raise ParseError("expected a list of events or NONE")
        return _Events(frozenset(), (), ())
    lx.expect(b"(")
    names: set[str] = set()
    unknown: list[str] = []
    fetch: tuple[FetchItem, ...] = ()
    while True:
        word = lx.atom()
        name = _EVENTS.get(word.upper())
        if name is None or name in _UNSUPPORTED_EVENTS:
            unknown.append(name or word)
        else:
            names.add(name)
        if lx.peek() == 0x20 and lx.data[lx.pos + 1 : lx.pos + 2] == b"(":
            lx.sp()
            if name != MESSAGE_NEW or not selected:
                raise ParseError("only MessageNew for the selected mailbox takes fetch attributes")
            fetch = parse_fetch_items(lx)
        if lx.peek() == 0x29:
            lx.pos += 1
            break
        lx.sp()
    if selected:
        _check_selected(names)
    return _Events(frozenset(names), fetch, tuple(unknown))


def _check_selected(names: set[str]) -> None:
    """RFC 5465 §5.2, §5.3, §5.1: the selected mailbox's events come in their pairs."""
    new_or_gone = names & {MESSAGE_NEW, MESSAGE_EXPUNGE}
    if new_or_gone and len(new_or_gone) != 2:
        raise ParseError("MessageNew and MessageExpunge must be together")
    if FLAG_CHANGE in names and MESSAGE_EXPUNGE not in names:
        raise ParseError("FlagChange requires MessageNew and MessageExpunge")
