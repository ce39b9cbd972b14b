"""IMAP string forms for server output (RFC 3501 §4.3, §9; RFC 9051 §4.3).

A value goes out as an atom when the grammar allows one and the value is a valid atom, as a
quoted string when it has no CR, LF, NUL (or 8-bit bytes, unless UTF-8 is enabled) and is not
too long, and as a literal ``{n}\\r\\n...`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Quoted strings longer than this go out as literals instead: clients cope with either, and a
#: literal is easier to skip for a client that does not want the value.
MAX_QUOTED = 1024

# atom-specials: "(" ")" "{" SP CTL list-wildcards quoted-specials resp-specials.
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
_NOT_QUOTABLE = frozenset(b"\r\n\x00")


def is_atom(b: bytes) -> bool:
    """True when ``b`` is a non-empty RFC 3501 atom (ASCII, no CTL, no atom-specials)."""
    if not b:
        return False
    return all(0x20 < c < 0x7F and c not in _ATOM_SPECIALS for c in b)


def quote_string(
    s: bytes, *, utf8: bool = False, limit: int | None = MAX_QUOTED, escape: bool = True
) -> bytes | None:
    """The quoted form of ``s``, or None when it must be sent as a literal.

    ``limit=None`` quotes strings of any length; ``escape=False`` sends a string holding
    ``"`` or ``\\`` as a literal instead of escaping (Dovecot's choice in ENVELOPE).
    """
    if limit is not None and len(s) > limit:
        return None
    for c in s:
        if c in _NOT_QUOTABLE or (c >= 0x80 and not utf8):
            return None
    if not escape and (b'"' in s or b"\\" in s):
        return None
    return b'"' + s.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(b: bytes) -> bytes:
    """A synchronizing literal ``{n}\\r\\n`` followed by the bytes."""
    return b"{%d}\r\n" % len(b) + b


def string(b: bytes, *, utf8: bool = False) -> bytes:
    """``b`` as an IMAP string: quoted when possible, else a literal."""
    quoted = quote_string(b, utf8=utf8)
    return literal(b) if quoted is None else quoted


def astring(b: bytes, *, utf8: bool = False) -> bytes:
    """``b`` as an astring: an atom when it is one, else quoted, else a literal."""
    return b if is_atom(b) else string(b, utf8=utf8)


def nstring(b: bytes | None, *, utf8: bool = False) -> bytes:
    """``b`` as an nstring: NIL for None, else a quoted string or a literal (never an atom)."""
    return b"NIL" if b is None else string(b, utf8=utf8)


def encode_list(items: Iterable[bytes]) -> bytes:
    """Already-encoded items as a parenthesized list: ``(a b c)``, ``()`` when empty."""
    return b"(" + b" ".join(items) + b")"
