"""FETCH attributes: names, macros, ``BODY[section]<partial>`` and ``BINARY[part]`` (RFC 9051
§6.4.5, RFC 3516 §4.2)."""

from __future__ import annotations

from mailsrv.imap.commands import FetchItem
from mailsrv.imap.lexer import Lexer, ParseError
from mailsrv.imap.tokens import SectionSpec, SectionText

_FETCH_NAME = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_PLAIN_ITEMS = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",  # RFC 7162 §3.1.4
        "EMAILID",  # RFC 8474 §5 (object_ids.py)
        "THREADID",
        "PREVIEW",  # RFC 8970 (message/preview.py), with (LAZY)
        "SAVEDATE",  # RFC 8514
        # Gmail's X-GM-EXT-1 (gmail_fetch.py); refused unless the persona offers it.
        "X-GM-MSGID",
        "X-GM-THRID",
        "X-GM-LABELS",
    }
)
_SECTION_TEXTS: dict[str, SectionText] = {
    "": "",
    "HEADER": "HEADER",
    "HEADER.FIELDS": "HEADER.FIELDS",
    "HEADER.FIELDS.NOT": "HEADER.FIELDS.NOT",
    "TEXT": "TEXT",
    "MIME": "MIME",
}
_SECTION_CHARS = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")


def parse_section(lx: Lexer, binary: bool) -> SectionSpec:
    lx.expect(b"[")
    text = lx.take(_SECTION_CHARS)
    words = text.decode().upper().split(".") if text else []
    parts: list[int] = []
    while words and words[0].isdigit():
        number = int(words.pop(0))
        if number == 0:
            raise ParseError("section part numbers start at 1")
        parts.append(number)
    rest = ".".join(words)
    section_text = _SECTION_TEXTS.get(rest)
    if section_text is None or (binary and rest) or (rest == "MIME" and not parts):
        raise ParseError(f"invalid section {text.decode()}")
    fields: tuple[str, ...] = ()
    if section_text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        lx.sp()
        lx.expect(b"(")
        names = [lx.astring()]
        while lx.skip_sp():
            names.append(lx.astring())
        lx.expect(b")")
        fields = tuple(n.decode("ascii", "replace").upper() for n in names)
    lx.expect(b"]")
    return SectionSpec(tuple(parts), section_text, fields)


def parse_fetch_item(lx: Lexer) -> FetchItem:
    name = lx.take(_FETCH_NAME).decode().upper()
    if lx.peek() != 0x5B:
        if name not in _PLAIN_ITEMS:
            raise ParseError(f"unknown fetch item {name}" if name else "expected a fetch item")
        if name == "PREVIEW" and lx.data[lx.pos : lx.pos + 6].upper() == b" (LAZY":
            _preview_modifiers(lx)
        return FetchItem(name)
    if name not in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        raise ParseError(f"unknown fetch item {name}")
    section = parse_section(lx, binary=name.startswith("BINARY"))
    partial = None
    if lx.peek() == 0x3C and name != "BINARY.SIZE":
        lx.pos += 1
        start = lx.number()
        lx.expect(b".")
        count = lx.number()
        lx.expect(b">")
        if count == 0:
            raise ParseError("partial length must not be 0")
        partial = (start, count)
    return FetchItem(name, section, partial)


def _preview_modifiers(lx: Lexer) -> None:
    """`` (LAZY)`` (RFC 8970 §4.1). LAZY lets a server answer NIL when the preview is not at
    hand; mailsrv always answers it (it is cached after the first computation)."""
    lx.pos += 2
    while True:
        if lx.take(_FETCH_NAME).upper() != b"LAZY":
            raise ParseError("unknown PREVIEW modifier")
        if lx.accept(b")"):
            return
        lx.sp()


def parse_fetch_items(lx: Lexer) -> tuple[FetchItem, ...]:
    """A macro (ALL FAST FULL), one attribute, or a parenthesized list of attributes."""
    items: list[FetchItem] = []
    if lx.peek() == 0x28:
        lx.pos += 1
        items.append(parse_fetch_item(lx))
        while lx.skip_sp():
            items.append(parse_fetch_item(lx))
        lx.expect(b")")
    else:
        start = lx.pos
        word = lx.take(_FETCH_NAME).decode().upper()
        if word in _MACROS and lx.peek() != 0x5B:
            items.extend(FetchItem(n) for n in _MACROS[word])
        else:
            lx.pos = start
            items.append(parse_fetch_item(lx))
    return tuple(dict.fromkeys(items))
