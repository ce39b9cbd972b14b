"""The IMAP URLs CATENATE takes (RFC 4469 §3, RFC 5092): a message, or a part of one, in the
user's own mailboxes, without URLAUTH::

    [imap://[user@]host[:port]] "/" mailbox [";UIDVALIDITY=" n] "/;UID=" n
        ["/;SECTION=" section] ["/;PARTIAL=" start ["." length]]

or relative to the selected mailbox, ``;UID=n[/;SECTION=...][/;PARTIAL=...]``. A user named in
the URL must be the one logged in (the session checks). Keys compare
without case; the mailbox and the section are percent-decoded (the mailbox as UTF-8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote_to_bytes

from mailsrv.imap.fetch_parser import parse_section
from mailsrv.imap.lexer import Lexer, ParseError
from mailsrv.imap.tokens import SectionSpec

_SCHEME = re.compile(rb"imap://(?:([^/@;]*)(?:;[^/@]*)?@)?[^/@]*", re.IGNORECASE)
_NUMBER = re.compile(rb"[1-9]\d{0,9}\Z")
_PARTIAL = re.compile(rb"(\d{1,10})(?:\.([1-9]\d{0,9}))?\Z")


class BadUrl(ValueError):
    """Not an IMAP URL CATENATE can use."""


@dataclass(frozen=True, slots=True)
class ImapUrl:
    """One message (or part of it). ``mailbox`` None: the selected mailbox; ``user`` the one an
    absolute URL names (None: not given)."""

    mailbox: bytes | None
    uid: int
    uidvalidity: int | None = None
    section: SectionSpec | None = None
    #: ``<start.length>``; length None: to the end.
    partial: tuple[int, int | None] | None = None
    user: bytes | None = None


def parse_imap_url(url: bytes) -> ImapUrl:
    """Parse ``url``; raises ``BadUrl``."""
    m = _SCHEME.match(url)
    path = url[m.end() :] if m is not None else url
    mailbox: bytes | None = None
    if path.startswith(b"/"):
        cut = path.find(b";")
        if cut < 0:
            raise BadUrl("no message in the URL")
        mailbox = unquote_to_bytes(path[1:cut].rstrip(b"/"))
        if not mailbox:
            raise BadUrl("no mailbox in the URL")
        path = path[cut:]
    elif m is not None or not path.startswith(b";"):
        raise BadUrl("not an IMAP URL")
    params: dict[bytes, bytes] = {}
    order: list[bytes] = []
    for item in path[1:].split(b";"):
        key, eq, value = item.partition(b"=")
        key = key.upper()
        if not eq or key in params:
            raise BadUrl("bad URL parameter")
        params[key] = value[:-1] if value.endswith(b"/") else value
        order.append(key)
    user = unquote_to_bytes(m.group(1)) if m is not None and m.group(1) else None
    return replace(_url(mailbox, params, order), user=user)


#: The parameters in the order RFC 5092 allows them.
_ORDER = (b"UIDVALIDITY", b"UID", b"SECTION", b"PARTIAL")


def _url(mailbox: bytes | None, params: dict[bytes, bytes], order: list[bytes]) -> ImapUrl:
    if any(k not in _ORDER for k in order):
        raise BadUrl("URL parameter not supported (no URLAUTH here)")
    if order != sorted(order, key=_ORDER.index) or b"UID" not in params:
        raise BadUrl("URL does not name one message")
    if b"UIDVALIDITY" in params and mailbox is None:
        raise BadUrl("UIDVALIDITY without a mailbox")
    uid = _number(params[b"UID"])
    uidvalidity = _number(params[b"UIDVALIDITY"]) if b"UIDVALIDITY" in params else None
    section = None
    if b"SECTION" in params:
        text = unquote_to_bytes(params[b"SECTION"])
        try:
            lx = Lexer(b"[" + text + b"]")
            section = parse_section(lx, binary=False)
            lx.end()
        except ParseError:
            raise BadUrl("bad SECTION") from None
    partial = None
    if b"PARTIAL" in params:
        pm = _PARTIAL.match(params[b"PARTIAL"])
        if pm is None:
            raise BadUrl("bad PARTIAL")
        partial = (int(pm.group(1)), int(pm.group(2)) if pm.group(2) else None)
    return ImapUrl(mailbox, uid, uidvalidity, section, partial)


def _number(text: bytes) -> int:
    if _NUMBER.match(text) is None:
        raise BadUrl("bad number in URL")
    return int(text)
