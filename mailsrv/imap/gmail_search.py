"""SEARCH X-GM-RAW, X-GM-MSGID, X-GM-THRID and X-GM-LABELS (Gmail's X-GM-EXT-1).

Before a SEARCH is parsed, its Gmail keys are rewritten into standard ones: ``X-GM-RAW
"from:ann has:attachment"`` becomes ``(FROM "ann" (UID 3,7))``, so matching stays
``search_match.py``'s. What IMAP cannot say (a label, an attachment, an id) becomes the UID set
of the selected folder's messages that have it, which a ``Resolver`` works out from the store.

The Gmail query subset (https://support.google.com/mail/answer/7190): ``from: to: cc: bcc:
subject:``, ``label:`` / ``in:`` (``in:inbox``, ``in:sent``, ... and ``in:anywhere``),
``is:unread is:read is:starred is:important``, ``has:attachment``, ``before: after:``
(``YYYY/MM/DD``), ``larger: smaller:`` (``10K``, ``2M``), ``-term`` (not), ``a OR b``,
``"exact words"`` and plain words (anywhere in the message). An unknown ``op:value`` is looked
for as text, as Gmail does with words it does not know.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from mailsrv.imap.gmail_ids import msgid_for, thrid_of
from mailsrv.imap.gmail_labels import INBOX_LABEL, label_index
from mailsrv.imap.gmail_names import GMAIL_KEYS
from mailsrv.imap.thread_ids import thread_seeds
from mailsrv.imap.tokens import Atom, Token
from mailsrv.message.content_fields import param
from mailsrv.message.structure import MimePart, parse_message
from mailsrv.store.base import MessageGone

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.session import ImapSession

#: ``-"a b"``, ``from:"Ann B"``, ``label:x``, ``word``.
_TERM = re.compile(r'-?(?:[A-Za-z-]+:)?(?:"[^"]*"|[^\s"]+)')
_HEADER_OPS = {"from": "FROM", "to": "TO", "cc": "CC", "bcc": "BCC", "subject": "SUBJECT"}
_IN = {
    "inbox": INBOX_LABEL,
    "sent": "\\Sent",
    "drafts": "\\Draft",
    "draft": "\\Draft",
    "spam": "\\Spam",
    "trash": "\\Trash",
    "starred": "\\Starred",
    "important": "\\Important",
}
_IS_FLAGS = {"unread": "UNSEEN", "read": "SEEN", "starred": "FLAGGED"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIZE = re.compile(r"(\d+)([KkMm]?)")


class Resolver(Protocol):
    """What a query needs from the store: UIDs of the selected folder's messages that…"""

    async def label(self, name: str) -> list[int]: ...  # … have this label
    async def attachments(self) -> list[int]: ...  # … have an attachment
    async def msgid(self, value: int) -> list[int]: ...  # … have this X-GM-MSGID
    async def thrid(self, value: int) -> list[int]: ...  # … have this X-GM-THRID


def uses_gmail(args: Iterable[Token]) -> bool:
    """Some key (at any depth) is one of Gmail's."""
    for tok in args:
        if isinstance(tok, list) and uses_gmail(tok):
            return True
        if isinstance(tok, Atom) and tok.value.upper() in GMAIL_KEYS:
            return True
    return False


async def rewrite(args: list[Token], r: Resolver) -> list[Token]:
    """``args`` with each Gmail key and its argument replaced by standard keys."""
    out: list[Token] = []
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if isinstance(tok, list):
            out.append(await rewrite(tok, r))
            continue
        word = tok.value.upper() if isinstance(tok, Atom) else ""
        if word not in GMAIL_KEYS or i >= len(args) or isinstance(args[i], list):
            out.append(tok)
            continue
        value, i = _text(args[i]), i + 1
        if word == "X-GM-RAW":
            out.append(await query_keys(value, r))
        elif word == "X-GM-LABELS":
            out.append(uid_key(await r.label(value)))
        else:
            number = int(value) if value.isdigit() else -1
            found = await (r.msgid(number) if word == "X-GM-MSGID" else r.thrid(number))
            out.append(uid_key(found))
    return out


def _text(tok: Token) -> str:
    if isinstance(tok, Atom):
        return tok.value
    return tok.decode("utf-8", "replace") if isinstance(tok, bytes) else ""


def uid_key(uids: Iterable[int]) -> list[Token]:
    """``(UID 1:3,7)``, or ``(NOT ALL)`` when there is none."""
    ordered = sorted(set(uids))
    if not ordered:
        return [Atom("NOT"), Atom("ALL")]
    ranges: list[str] = []
    start = prev = ordered[0]
    for u in [*ordered[1:], None]:
        if u is not None and u == prev + 1:
            prev = u
            continue
        ranges.append(str(start) if start == prev else f"{start}:{prev}")
        if u is not None:
            start = prev = u
    return [Atom("UID"), Atom(",".join(ranges))]


async def query_keys(query: str, r: Resolver) -> list[Token]:
    """A Gmail query as one parenthesized group of standard keys (all terms must hold)."""
    keys: list[Token] = []
    pending_or = False
    for term in _TERM.findall(query):
        if term == "OR" and keys:
            pending_or = True
            continue
        key = await _term(term, r)
        if pending_or:
            key = [Atom("OR"), keys.pop(), key]
            pending_or = False
        keys.append(key)
    return keys or [Atom("ALL")]


async def _term(term: str, r: Resolver) -> Token:
    if term.startswith("-") and len(term) > 1:
        return [Atom("NOT"), await _term(term[1:], r)]
    op, colon, value = term.partition(":")
    if not colon or not value or term.startswith('"'):
        return [Atom("TEXT"), _unquoted(term).encode()]
    op, value = op.lower(), _unquoted(value)
    if op in _HEADER_OPS:
        return [Atom(_HEADER_OPS[op]), value.encode()]
    if op in ("label", "in"):
        if op == "in" and value.lower() == "anywhere":
            return Atom("ALL")
        return uid_key(await r.label(_IN.get(value.lower(), value)))
    if op == "is" and value.lower() in _IS_FLAGS:
        return Atom(_IS_FLAGS[value.lower()])
    if op == "is" and value.lower() == "important":
        return uid_key(await r.label("\\Important"))
    if op == "has" and value.lower() in ("attachment", "attachments"):
        return uid_key(await r.attachments())
    if op in ("before", "after") and (date := _date(value)) is not None:
        day = f"{date.day}-{_MONTHS[date.month - 1]}-{date.year}"
        return [Atom("BEFORE" if op == "before" else "SINCE"), Atom(day)]
    if op in ("larger", "smaller") and (m := _SIZE.fullmatch(value)):
        octets = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
        return [Atom("LARGER" if op == "larger" else "SMALLER"), Atom(str(octets))]
    return [Atom("TEXT"), term.encode()]


def _unquoted(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _date(text: str) -> dt.date | None:
    """``2024/05/17``, ``2024-05-17`` or ``05/17/2024``."""
    parts = re.split(r"[/-]", text)
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    a, b, c = (int(p) for p in parts)
    try:
        return dt.date(a, b, c) if len(parts[0]) == 4 else dt.date(c, a, b)
    except ValueError:
        return None


def has_attachment(root: MimePart) -> bool:
    """A part marked ``attachment`` or carrying a file name (what Gmail's paper clip shows)."""
    stack = [root]
    while stack:
        part = stack.pop()
        stack.extend(part.children)
        if part.children:
            continue
        disposition = part.disposition
        if disposition is not None and disposition[0].lower() == b"attachment":
            return True
        named = disposition is not None and param(disposition[1], "filename") is not None
        if named or param(part.params, "name") is not None:
            return True
    return False


class ViewResolver:
    """A ``Resolver`` over the selected folder of a session."""

    def __init__(self, s: ImapSession, view: MailboxView) -> None:
        self.s, self.view = s, view

    async def _where(self, test: str, value: int) -> list[int]:
        view = self.view
        seeds = await thread_seeds(self.s, view, view.uids) if test == "thrid" else {}
        out = []
        for uid in view.uids:
            try:
                msgid = await msgid_for(view.mailbox, uid)
            except MessageGone:
                continue
            if test == "thrid":
                seed = seeds.get(uid)
                if seed is None or thrid_of(seed, msgid) != value:
                    continue
            elif msgid != value:
                continue
            out.append(uid)
        return out

    async def msgid(self, value: int) -> list[int]:
        return await self._where("msgid", value)

    async def thrid(self, value: int) -> list[int]:
        return await self._where("thrid", value)

    async def label(self, name: str) -> list[int]:
        index = await label_index(self.s)
        wanted = _label_key(name)
        out = []
        for uid in self.view.uids:
            try:
                msgid = await msgid_for(self.view.mailbox, uid)
            except MessageGone:
                continue
            if any(_label_key(x) == wanted for x in index.labels(msgid)):
                out.append(uid)
        return out

    async def attachments(self) -> list[int]:
        out = []
        for uid in self.view.uids:
            try:
                wire = await self.view.mailbox.read(uid)
            except MessageGone:
                continue
            if has_attachment(parse_message(wire)):
                out.append(uid)
        return out


def _label_key(label: str) -> str:
    """Labels compare as Gmail's search does: without case, ``-`` and ``_`` for spaces."""
    return re.sub(r"[\s_-]+", "-", label.strip().lower())
