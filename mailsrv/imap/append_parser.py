"""APPEND's grammar: one or more messages (MULTIAPPEND, RFC 3502 §6), each a literal, a
literal8 (RFC 3516 §4.4), ``UTF8 (literal8)`` (RFC 6855 §4) or ``CATENATE (...)`` of TEXT and URL
parts (RFC 4469 §5), with optional flags and date-time before it::

    append         = "APPEND" SP mailbox 1*append-message
    append-message = [SP flag-list] [SP date-time] SP append-data
    cat-part       = "TEXT" SP (literal / literal8) / "URL" SP astring

The framing layer has already checked every literal against the limits.
"""

from __future__ import annotations

from collections.abc import Callable

from mailsrv.imap.commands import (
    Append,
    AppendMessage,
    CatenatePart,
    CatenateText,
    CatenateUrl,
    Command,
)
from mailsrv.imap.lexer import Lexer, ParseError

#: Parts of one CATENATE: enough for any real composer (Dovecot has no limit; this bounds work).
MAX_CATENATE_PARTS = 1000
#: Messages in one MULTIAPPEND (the literals' total is bounded by the framing layer too).
MAX_APPEND_MESSAGES = 1000

FlagList = Callable[[Lexer], tuple[str, ...]]
DateTime = Callable[[bytes], float]


def parse_append(lx: Lexer, tag: str, flag_list: FlagList, date_time: DateTime) -> Command:
    """The arguments after ``APPEND``; ``flag_list`` and ``date_time`` are the parser's own."""
    lx.sp()
    mailbox = lx.astring()
    messages = [_message(lx, flag_list, date_time)]
    while not lx.at_end():
        if len(messages) >= MAX_APPEND_MESSAGES:
            raise ParseError("too many messages in one APPEND")
        messages.append(_message(lx, flag_list, date_time))
    return Append(tag, mailbox, tuple(messages))


def _message(lx: Lexer, flag_list: FlagList, date_time: DateTime) -> AppendMessage:
    lx.sp()
    flags: tuple[str, ...] = ()
    date = None
    if lx.peek() == 0x28:
        flags = flag_list(lx)
        lx.sp()
    if lx.peek() == 0x22:
        date = date_time(lx.quoted())
        lx.sp()
    if _keyword(lx, b"CATENATE"):
        lx.sp()
        return AppendMessage(flags, date, _catenate(lx))
    utf8 = _keyword(lx, b"UTF8")
    if utf8:
        lx.sp()
        lx.expect(b"(")
    binary, message = _literal(lx)
    if utf8:
        if not binary:
            raise ParseError("UTF8 takes a literal8")
        lx.expect(b")")
    return AppendMessage(flags, date, message, binary)


def _keyword(lx: Lexer, word: bytes) -> bool:
    """``word`` (any case) followed by a space, consumed; else nothing moves."""
    end = lx.pos + len(word)
    if lx.data[lx.pos : end].upper() == word and lx.data[end : end + 1] == b" ":
        lx.pos = end
        return True
    return False


def _literal(lx: Lexer) -> tuple[bool, bytes]:
    """A literal or a literal8: (is it a literal8, its bytes)."""
    binary = lx.peek() == 0x7E
    if binary:
        lx.pos += 1
    if lx.peek() != 0x7B:
        raise ParseError("expected the message as a literal")
    return binary, lx.literal()


def _catenate(lx: Lexer) -> tuple[CatenatePart, ...]:
    lx.expect(b"(")
    parts: list[CatenatePart] = []
    while True:
        if len(parts) >= MAX_CATENATE_PARTS:
            raise ParseError("too many CATENATE parts")
        if _keyword(lx, b"TEXT"):
            lx.sp()
            binary, text = _literal(lx)
            parts.append(CatenateText(text, binary))
        elif _keyword(lx, b"URL"):
            lx.sp()
            parts.append(CatenateUrl(lx.astring()))
        else:
            raise ParseError("expected TEXT or URL")
        if lx.peek() == 0x29:
            lx.pos += 1
            return tuple(parts)
        lx.sp()
