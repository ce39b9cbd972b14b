"""RFC 5322 address lists as IMAP ENVELOPE sees them (RFC 3501 §7.4.2, ``address``).

Each address becomes ``Address(name, adl, mailbox, host)``; a group is a start marker
(``mailbox`` = group name, ``host`` None) and an end marker (all None). Parsing is lenient
in the ways Dovecot is, so ENVELOPE matches it: a comment names an address that has no
display name, a missing local part or domain becomes ``MISSING_MAILBOX`` /
``MISSING_DOMAIN``, an empty list element is an address with both missing, and parsing stops
at the first place where no ``,`` separates two addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"

_MISSING = (MISSING_MAILBOX, MISSING_DOMAIN)
_SPECIALS = b'()<>[]:;@\\,"'
_WS = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class Address:
    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


# token kinds
_ATOM, _QUOTED, _COMMENT, _LITERAL, _SPECIAL = range(5)
Token = tuple[int, bytes]


def _tokens(value: bytes) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in _WS:
            i += 1
        elif c == 0x22:  # quoted-string
            i, text = _delimited(value, i + 1, 0x22)
            out.append((_QUOTED, text))
        elif c == 0x28:  # comment, nested
            depth, j, buf = 1, i + 1, bytearray()
            while j < n and depth:
                ch = value[j]
                if ch == 0x5C and j + 1 < n:
                    buf.append(value[j + 1])
                    j += 2
                    continue
                depth += (ch == 0x28) - (ch == 0x29)
                if depth:
                    buf.append(ch)
                j += 1
            out.append((_COMMENT, bytes(buf)))
            i = j
        elif c == 0x5B:  # domain literal
            j = value.find(b"]", i)
            j = n if j < 0 else j + 1
            out.append((_LITERAL, value[i:j]))
            i = j
        elif c in _SPECIALS:
            out.append((_SPECIAL, bytes([c])))
            i += 1
        else:
            j = i
            while j < n and value[j] not in _SPECIALS and value[j] not in _WS:
                j += 1
            out.append((_ATOM, value[i:j]))
            i = j
    return out


def _delimited(value: bytes, i: int, close: int) -> tuple[int, bytes]:
    buf = bytearray()
    n = len(value)
    while i < n:
        c = value[i]
        if c == 0x5C and i + 1 < n:
            buf.append(value[i + 1])
            i += 2
            continue
        i += 1
        if c == close:
            break
        if c not in b"\r\n":
            buf.append(c)
    return i, bytes(buf)


class _Reader:
    __slots__ = ("comment", "pos", "toks")

    def __init__(self, toks: list[Token]) -> None:
        self.toks = [t for t in toks if t[0] != _COMMENT]
        self.pos = 0
        self.comment: dict[int, bytes] = {}
        # remember each comment by the index of the token it follows, for naming
        k = 0
        for kind, text in toks:
            if kind == _COMMENT:
                self.comment.setdefault(k, text)
            else:
                k += 1

    def peek(self) -> Token | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def is_special(self, ch: bytes) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == _SPECIAL and tok[1] == ch

    def comment_between(self, start: int, end: int) -> bytes | None:
        for k in range(start, end + 1):
            if k in self.comment:
                return self.comment[k]
        return None


def parse_addresses(value: bytes) -> list[Address]:
    """Parse an address-list header value (raw bytes) into ENVELOPE addresses."""
    r = _Reader(_tokens(value))
    out: list[Address] = []
    while r.peek() is not None:
        _address(r, out)
        if r.is_special(b","):
            r.pos += 1
            continue
        break
    return out


def address_text(value: bytes) -> bytes:
    """An address-list header value written back in a normal form: ``name <mailbox@host>``
    (``mailbox@host`` without a name), a group as ``group: a, b;``, comments and folding
    gone, missing parts left out. A value with no address at all is returned unchanged."""
    addresses = parse_addresses(value)
    if not addresses:
        return value
    items: list[bytes] = []
    group: list[bytes] | None = None  # the members of the open group
    group_name = b""
    for a in addresses:
        if a.host is None and a.mailbox is not None:  # group start
            group, group_name = [], a.mailbox
        elif a.host is None:  # group end
            items.append(b"%s: %s;" % (group_name, b", ".join(group or [])))
            group = None
        else:
            (items if group is None else group).append(_written(a))
    return b", ".join(items)


def _written(a: Address) -> bytes:
    spec = b"@".join(p for p in (a.mailbox, a.host) if p and p not in _MISSING)
    return b"%s <%s>" % (a.name, spec) if a.name else spec


def _address(r: _Reader, out: list[Address]) -> None:
    # A group is a phrase followed by ":" before any "<", "@" or ",".
    j = r.pos
    while j < len(r.toks):
        kind, text = r.toks[j]
        if kind == _SPECIAL and text in (b"<", b"@", b",", b";"):
            break
        if kind == _SPECIAL and text == b":":
            _group(r, j, out)
            return
        j += 1
    out.append(_mailbox(r))


def _group(r: _Reader, colon: int, out: list[Address]) -> None:
    name = _phrase(r.toks[r.pos : colon])
    out.append(Address(None, None, name or b"", None))
    r.pos = colon + 1
    while r.peek() is not None and not r.is_special(b";"):
        if r.is_special(b","):
            r.pos += 1
            continue
        before = r.pos
        out.append(_mailbox(r))
        if r.pos == before:  # nothing consumed: skip the stray token
            r.pos += 1
        if not (r.is_special(b",") or r.is_special(b";")):
            break
    if r.is_special(b";"):
        r.pos += 1
    out.append(Address(None, None, None, None))


def _mailbox(r: _Reader) -> Address:
    start = r.pos
    words: list[Token] = []
    while (tok := r.peek()) is not None and not (
        tok[0] == _SPECIAL and tok[1] in (b"<", b"@", b",", b";", b">")
    ):
        if tok[0] == _SPECIAL and tok[1] != b".":
            r.pos += 1  # stray special inside a phrase: skip it
            continue
        words.append(tok)
        r.pos += 1
    adl: bytes | None = None
    if r.is_special(b"<"):
        name = _phrase(words) or None
        r.pos += 1
        adl = _route(r)
        local, domain = _addr_spec(r, stop=b">")
        if r.is_special(b">"):
            r.pos += 1
    else:
        local = b"".join(_word(t) for t in words)
        domain = None
        if r.is_special(b"@"):
            r.pos += 1
            domain = _domain(r, stop=b"")
        name = r.comment_between(start, r.pos)
    return Address(
        name or None,
        adl,
        local or MISSING_MAILBOX,
        domain or MISSING_DOMAIN,
    )


def _route(r: _Reader) -> bytes | None:
    """An obsolete source route ``@a,@b:`` inside angle brackets (RFC 5322 obs-route)."""
    if not r.is_special(b"@"):
        return None
    j = r.pos
    while j < len(r.toks) and not (r.toks[j][0] == _SPECIAL and r.toks[j][1] in (b":", b">")):
        j += 1
    if j >= len(r.toks) or r.toks[j][1] != b":":
        return None
    route = b"".join(_word(t) for t in r.toks[r.pos : j])
    r.pos = j + 1
    return route


def _addr_spec(r: _Reader, stop: bytes) -> tuple[bytes, bytes | None]:
    parts: list[bytes] = []
    while (tok := r.peek()) is not None and not (
        tok[0] == _SPECIAL and tok[1] in (b"@", stop, b",", b";")
    ):
        parts.append(_word(tok))
        r.pos += 1
    domain = None
    if r.is_special(b"@"):
        r.pos += 1
        domain = _domain(r, stop)
    return b"".join(parts), domain


def _domain(r: _Reader, stop: bytes) -> bytes:
    parts: list[bytes] = []
    while (tok := r.peek()) is not None and not (
        tok[0] == _SPECIAL and tok[1] in (stop or b",", b",", b";", b"<", b">", b"@")
    ):
        if tok[0] not in (_ATOM, _LITERAL) and tok[1] != b".":
            break
        parts.append(tok[1])
        r.pos += 1
    return b"".join(parts)


def _word(tok: Token) -> bytes:
    return tok[1]


def _phrase(words: list[Token]) -> bytes:
    return b" ".join(t[1] for t in words if t[0] in (_ATOM, _QUOTED, _SPECIAL))
