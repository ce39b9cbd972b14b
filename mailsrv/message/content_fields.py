"""Structured MIME header values: Content-Type, Content-Disposition, parameters, languages.

RFC 2045 §5.1 (type/subtype; parameters), RFC 2183 (disposition), RFC 2231 (parameter
continuations and charsets), RFC 3282 (Content-Language). Parsing is lenient the way Dovecot
is: a broken parameter is skipped, the rest still counts, and nothing ever raises.
"""

from __future__ import annotations

import functools
import re
import urllib.parse

from mailsrv.message.encoded_words import decode_bytes, decode_header

# RFC 2045 tspecials plus SP and CTLs end a token.
_TSPECIALS = frozenset(b'()<>@,;:\\"/[]?= \t\r\n')
_RFC2231_KEY = re.compile(rb"^(.*?)\*(?:(\d+)(\*?)|)$", re.DOTALL)
# The same sets as regular expressions (the byte loops above, done in C).
_TOKEN = re.compile(rb'[^()<>@,;:\\"/\[\]?=\x00-\x20]*')
_WSP = re.compile(rb"[ \t\r\n]*")
_SIMPLE_QUOTED = re.compile(rb'"([^"\\\r\n]*)"')
_PARAM_STOPS = re.compile(rb'[;"(]')

Params = tuple[tuple[bytes, bytes], ...]


class _Cursor:
    """A position in one header value, with RFC 5322 CFWS skipping."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def skip_cfws(self) -> None:
        data = self.data
        self.pos = _WSP.match(data, self.pos).end()  # type: ignore[union-attr]
        while self.pos < len(data):
            c = data[self.pos]
            if c in b" \t\r\n":
                self.pos += 1
            elif c == 0x28:  # "(": comments nest
                self.skip_comment()
            else:
                return

    def skip_comment(self) -> bytes:
        """Skip a comment at the cursor and return its text (escapes removed)."""
        depth = 0
        out = bytearray()
        data = self.data
        while self.pos < len(data):
            c = data[self.pos]
            self.pos += 1
            if c == 0x5C and self.pos < len(data):  # backslash
                out.append(data[self.pos])
                self.pos += 1
                continue
            if c == 0x28:
                depth += 1
                if depth == 1:
                    continue
            elif c == 0x29:
                depth -= 1
                if depth == 0:
                    return bytes(out)
            out.append(c)
        return bytes(out)

    def token(self) -> bytes:
        start = self.pos
        self.pos = _TOKEN.match(self.data, start).end()  # type: ignore[union-attr]
        return self.data[start : self.pos]

    def quoted(self) -> bytes:
        """Read a quoted-string at the cursor (which is on the opening quote)."""
        simple = _SIMPLE_QUOTED.match(self.data, self.pos)
        if simple is not None:  # no escapes, no folding: the common case
            self.pos = simple.end()
            return simple.group(1)
        self.pos += 1
        out = bytearray()
        data = self.data
        while self.pos < len(data):
            c = data[self.pos]
            self.pos += 1
            if c == 0x22:
                break
            if c == 0x5C and self.pos < len(data):
                c = data[self.pos]
                self.pos += 1
            elif c in b"\r\n":
                continue  # folding inside a quoted string
            out.append(c)
        return bytes(out)

    def skip_to(self, stop: int) -> None:
        """Move to the next ``stop`` byte outside quotes and comments (or to the end)."""
        data = self.data
        while self.pos < len(data):
            if stop == 0x3B:  # jump to the next byte that matters
                found = _PARAM_STOPS.search(data, self.pos)
                if found is None:
                    self.pos = len(data)
                    return
                self.pos = found.start()
            c = data[self.pos]
            if c == stop:
                return
            if c == 0x22:
                self.quoted()
            elif c == 0x28:
                self.skip_comment()
            else:
                self.pos += 1


@functools.lru_cache(maxsize=1024)
def parse_content_type(value: bytes) -> tuple[bytes, bytes, Params]:
    """``text/plain; charset=x`` -> (b"text", b"plain", params); case kept as written.

    A value with no type gives empty strings; a type with no ``/subtype`` keeps the type and an
    empty subtype; parameters are read only after a complete type/subtype (Dovecot does this).
    """
    cur = _Cursor(value)
    cur.skip_cfws()
    main = cur.token()
    if not main:
        return b"", b"", ()
    cur.skip_cfws()
    if cur.peek() != 0x2F:  # "/"
        return main, b"", ()
    cur.pos += 1
    cur.skip_cfws()
    sub = cur.token()
    if not sub:
        return b"", b"", ()
    return main, sub, _params(cur)


@functools.lru_cache(maxsize=1024)
def parse_disposition(value: bytes) -> tuple[bytes, Params]:
    """``attachment; filename=x`` -> (b"attachment", params); the type may be empty."""
    cur = _Cursor(value)
    cur.skip_cfws()
    kind = cur.token()
    return kind, _params(cur)


@functools.lru_cache(maxsize=1024)
def parse_language(value: bytes) -> tuple[bytes, ...]:
    """``en, fr (comment)`` -> (b"en", b"fr") (RFC 3282)."""
    cur = _Cursor(value)
    out: list[bytes] = []
    while not cur.at_end():
        cur.skip_cfws()
        tag = cur.token()
        if tag:
            out.append(tag)
        cur.skip_cfws()
        if cur.peek() == 0x2C:
            cur.pos += 1
        elif not tag and not cur.at_end():
            cur.pos += 1  # junk: step over it
    return tuple(out)


@functools.lru_cache(maxsize=1024)
def parse_token(value: bytes) -> bytes:
    """The first token of a value (Content-Transfer-Encoding), without CFWS."""
    cur = _Cursor(value)
    cur.skip_cfws()
    return cur.token()


def _params(cur: _Cursor) -> Params:
    raw: list[tuple[bytes, bytes]] = []
    while True:
        cur.skip_to(0x3B)  # ";"
        if cur.at_end():
            break
        cur.pos += 1
        cur.skip_cfws()
        key = cur.token()
        cur.skip_cfws()
        if cur.peek() != 0x3D:  # "=": a parameter without a value is dropped
            continue
        cur.pos += 1
        cur.skip_cfws()
        value = cur.quoted() if cur.peek() == 0x22 else cur.token()
        raw.append((key, value))
    return _join_rfc2231(raw)


def _join_rfc2231(raw: list[tuple[bytes, bytes]]) -> Params:
    """Join ``name*0``/``name*1`` continuations (RFC 2231 §3) after the plain parameters.

    A joined parameter with any extended (``*``-encoded) segment is named ``name*`` and keeps
    its ``charset'lang'%XX`` value encoded, so BODYSTRUCTURE shows what the client must decode
    (this is what Dovecot sends); ``decode_param`` gives the decoded text.
    """
    plain: list[tuple[bytes, bytes]] = []
    extended: list[tuple[bytes, int, bool, bytes]] = []
    for key, value in raw:
        m = _RFC2231_KEY.match(key)
        if m is None:
            plain.append((key, value))
        elif m.group(2) is None:
            extended.append((m.group(1), -1, True, value))
        else:
            extended.append((m.group(1), int(m.group(2)), bool(m.group(3)), value))
    if not extended:
        return tuple(plain)
    extended.sort(key=lambda item: (item[0].lower(), item[1]))
    joined: list[tuple[bytes, bytes]] = []
    i = 0
    while i < len(extended):
        name = extended[i][0]
        group = []
        while i < len(extended) and extended[i][0].lower() == name.lower():
            group.append(extended[i])
            i += 1
        encoded = any(seg[2] for seg in group)
        value = b""
        for _, _, seg_encoded, seg_value in group:
            if encoded and not seg_encoded:
                seg_value = urllib.parse.quote_from_bytes(seg_value, safe=b"").encode()
            value += seg_value
        joined.append((name + b"*" if encoded else name, value))
    return tuple(plain) + tuple(joined)


def decode_param(params: Params, name: str) -> str | None:
    """The decoded text of parameter ``name`` (RFC 2231 charset and %XX, or RFC 2047 words)."""
    wanted = name.lower().encode()
    for key, value in params:
        if key.lower() == wanted:
            return decode_header(value)
    for key, value in params:
        if key.lower() == wanted + b"*":
            charset, _, rest = value.partition(b"'")
            _, _, text = rest.partition(b"'")
            return decode_bytes(
                urllib.parse.unquote_to_bytes(text), charset.decode("ascii", "replace")
            )
    return None


def param(params: Params, name: str) -> bytes | None:
    """The raw value of parameter ``name`` (case-insensitive), or None."""
    wanted = name.lower().encode()
    for key, value in params:
        if key.lower() == wanted:
            return value
    return None
