"""A cursor over one complete IMAP command (RFC 3501 §9, RFC 9051 §9 grammar).

The protocol core hands the lexer a whole command: its line segments joined with CRLF and every
literal's bytes spliced in right after its ``{n}`` announcement, exactly as a client sends them
(the core has already checked each literal's size and normalized bare-LF line ends). The lexer
then reads atoms, strings, literals and lists from it; anything that does not fit the grammar
raises ``ParseError`` with a reason the session sends back in a ``BAD``.
"""

from __future__ import annotations

import re

from mailsrv.imap.tokens import Atom, Token

#: Octets that may not appear in an atom (RFC 3501 §9 atom-specials, CTLs and 8-bit excluded).
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
_ATOM_CHARS = frozenset(c for c in range(0x21, 0x7F) if c not in _ATOM_SPECIALS)
_ASTRING_CHARS = _ATOM_CHARS | {ord("]")}
_TAG_CHARS = _ASTRING_CHARS - {ord("+")}
_LIST_CHARS = _ATOM_CHARS | frozenset(b"%*]")
#: What a generic token may hold (sequence sets, flags, search keys): no SP, parens or quotes.
_TOKEN_CHARS = frozenset(c for c in range(0x21, 0x7F) if c not in b'()"{')
_LITERAL_RE = re.compile(rb"\{(\d{1,19})(\+?)\}\r\n")
#: Nested lists deeper than this are refused (no real command needs more than a handful).
MAX_NESTING = 32


class ParseError(Exception):
    """The command does not fit the grammar; ``str(exc)`` is a reason fit for the client."""


class Lexer:
    """Reads one command; ``pos`` only moves forward."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    # -- positions --------------------------------------------------------------------------

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.data) or self.data.startswith(b"\r\n", self.pos)

    def end(self) -> None:
        """The command must stop here (only the final CRLF may follow)."""
        if not self.at_end():
            raise ParseError("unexpected extra arguments")

    def sp(self) -> None:
        if self.peek() != 0x20:
            raise ParseError("missing argument" if self.at_end() else "expected a space")
        self.pos += 1

    def skip_sp(self) -> bool:
        """Consume one space if there is one."""
        if self.peek() == 0x20:
            self.pos += 1
            return True
        return False

    def expect(self, text: bytes) -> None:
        if not self.data.startswith(text, self.pos):
            raise ParseError(f"expected {text.decode()!r}")
        self.pos += len(text)

    def accept(self, text: bytes) -> bool:
        """Consume ``text`` (case-insensitively) if it comes next."""
        end = self.pos + len(text)
        if self.data[self.pos : end].upper() == text.upper():
            self.pos = end
            return True
        return False

    # -- simple values ----------------------------------------------------------------------

    def take(self, chars: frozenset[int]) -> bytes:
        """The run of octets from ``chars`` at the cursor (possibly empty)."""
        start = self.pos
        data = self.data
        n = len(data)
        pos = start
        while pos < n and data[pos] in chars:
            pos += 1
        self.pos = pos
        return data[start:pos]

    def tag(self) -> str:
        value = self.take(_TAG_CHARS)
        if not value:
            raise ParseError("missing or invalid tag")
        return value.decode("ascii")

    def atom(self) -> str:
        value = self.take(_ATOM_CHARS)
        if not value:
            raise ParseError("expected an atom")
        return value.decode("ascii")

    def word(self) -> str:
        """A generic token text: sequence set, flag, search key, fetch item name."""
        value = self.take(_TOKEN_CHARS)
        if not value:
            raise ParseError("expected an argument")
        return value.decode("ascii")

    def number(self) -> int:
        value = self.take(frozenset(b"0123456789"))
        if not value or len(value) > 19:
            raise ParseError("expected a number")
        return int(value)

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ParseError("unterminated quoted string")
            c = data[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(out)
            if c == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise ParseError("bad escape in quoted string")
                c = data[self.pos]
                self.pos += 1
            elif c in (0x0D, 0x0A, 0x00):
                raise ParseError("CR, LF or NUL in quoted string")
            out.append(c)

    def literal(self) -> bytes:
        m = _LITERAL_RE.match(self.data, self.pos)
        if m is None:
            raise ParseError("bad literal")
        size = int(m.group(1))
        start = m.end()
        if start + size > len(self.data):
            raise ParseError("literal shorter than announced")
        self.pos = start + size
        return self.data[start : self.pos]

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal()
        raise ParseError("expected a string")

    def astring(self) -> bytes:
        if self.peek() in (0x22, 0x7B):
            return self.string()
        value = self.take(_ASTRING_CHARS)
        if not value:
            raise ParseError("expected an atom or a string")
        return value

    def nstring(self) -> bytes | None:
        if self.peek() in (0x22, 0x7B):
            return self.string()
        if self.accept(b"NIL"):
            return None
        raise ParseError("expected a string or NIL")

    def list_mailbox(self) -> bytes:
        """A LIST pattern: an atom that may hold ``%``, ``*`` and ``]``, or a string."""
        if self.peek() in (0x22, 0x7B):
            return self.string()
        value = self.take(_LIST_CHARS)
        if not value:
            raise ParseError("expected a mailbox pattern")
        return value

    # -- generic tokens ---------------------------------------------------------------------

    def token(self, depth: int = 0) -> Token:
        c = self.peek()
        if c == 0x28:
            return self.token_list(depth + 1)
        if c in (0x22, 0x7B):
            return self.string()
        return Atom(self.word())

    def token_list(self, depth: int = 1) -> list[Token]:
        """``(a b (c))``: the parenthesized list at the cursor."""
        if depth > MAX_NESTING:
            raise ParseError("lists nested too deeply")
        self.expect(b"(")
        items: list[Token] = []
        if self.peek() == 0x29:
            self.pos += 1
            return items
        while True:
            items.append(self.token(depth))
            if self.peek() == 0x29:
                self.pos += 1
                return items
            self.sp()

    def rest(self) -> list[Token]:
        """Every remaining space-separated token up to the end of the command."""
        items: list[Token] = []
        while not self.at_end():
            self.sp()
            items.append(self.token())
        return items
