"""The grammar of GENURLAUTH, RESETKEY and URLFETCH (RFC 4467 §11, RFC 5524 §3)::

genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism)
resetkey   = "RESETKEY" [SP mailbox *(SP mechanism)]
urlfetch   = "URLFETCH" 1*(SP (url / "(" url *(SP urlfetch-param) ")"))
urlfetch-param = "BODYPARTSTRUCTURE" / "BINARY" / "BODY"   (at most one of BINARY, BODY)
"""

from __future__ import annotations

from collections.abc import Sized

from mailsrv.imap.commands import Command, GenUrlauth, ResetKey, UrlFetch, UrlFetchItem
from mailsrv.imap.lexer import Lexer, ParseError

#: URLs in one command (each is answered on one response line).
MAX_URLS = 100


def parse_genurlauth(lx: Lexer, tag: str, uid: bool) -> Command:
    urls: list[tuple[bytes, str]] = []
    while not lx.at_end() or not urls:
        lx.sp()
        url = lx.astring()
        lx.sp()
        urls.append((url, lx.atom().upper()))
        _limit(urls)
    return GenUrlauth(tag, tuple(urls))


def parse_resetkey(lx: Lexer, tag: str, uid: bool) -> Command:
    if lx.at_end():
        return ResetKey(tag, None)
    lx.sp()
    mailbox = lx.astring()
    mechanisms = []
    while not lx.at_end():
        lx.sp()
        mechanisms.append(lx.atom().upper())
    return ResetKey(tag, mailbox, tuple(mechanisms))


def parse_urlfetch(lx: Lexer, tag: str, uid: bool) -> Command:
    items: list[UrlFetchItem] = []
    while not lx.at_end() or not items:
        lx.sp()
        items.append(_item(lx) if lx.accept(b"(") else UrlFetchItem(lx.astring()))
        _limit(items)
    return UrlFetch(tag, tuple(items))


def _item(lx: Lexer) -> UrlFetchItem:
    url = lx.astring()
    body: str | None = None
    structure = False
    while not lx.accept(b")"):
        lx.sp()
        param = lx.atom().upper()
        if param == "BODYPARTSTRUCTURE" and not structure:
            structure = True
        elif param in ("BODY", "BINARY") and body is None:
            body = param
        else:
            raise ParseError(f"URLFETCH parameter {param} not allowed here")
    return UrlFetchItem(url, True, body, structure)


def _limit(items: Sized) -> None:
    if len(items) > MAX_URLS:
        raise ParseError(f"more than {MAX_URLS} URLs in one command")
