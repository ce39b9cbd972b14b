"""A message's text, decoded: what SEARCH compares and what the console shows.

Header values have their RFC 2047 words decoded; a text part's body has its transfer encoding
and charset undone. For searching, text is folded (``fold``: compatibility decomposition and
case folding, RFC 9051 §6.4.4) and comes in pieces that no match may cross: each header of a
part, each text body. Non-text parts carry no text (as in Dovecot); an encapsulated message
contributes its header. Nothing here raises on malformed mail.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterator

from mailsrv.message.encoded_words import charset_codec, decode_bytes, decode_header
from mailsrv.message.structure import MimePart
from mailsrv.message.transfer_encoding import KNOWN, decode

#: Python codecs that decode ASCII bytes to the same ASCII characters, statelessly.
_ASCII_CODECS = ("utf-8", "ascii", "latin-1", "iso8859-", "cp125", "koi8-")


def fold(text: str) -> str:
    """The form text compares in when searched: NFKD-decomposed and case-folded."""
    return unicodedata.normalize("NFKD", text.casefold())


@functools.lru_cache(maxsize=256)
def is_ascii_charset(charset: str) -> bool:
    """True when ASCII bytes in ``charset`` decode (as decode_bytes does it) to themselves."""
    codec = charset_codec(charset)
    return codec is None or codec.startswith(_ASCII_CODECS)


def has_text(part: MimePart) -> bool:
    """Whether ``part`` is a leaf whose body is text (text/*, or no Content-Type at all)."""
    if part.children or part.message is not None:
        return False
    return (part.is_text or part.defaulted) and bool(part.subtype)


def decoded_body(part: MimePart, wire: bytes) -> bytes:
    """The body of a leaf part with its transfer encoding undone (as it is when unknown)."""
    encoding = part.transfer_encoding
    body = part.body(wire)
    return decode(body, encoding) if encoding in KNOWN else body


def body_text(part: MimePart, wire: bytes) -> str:
    """The body of a text part as text: transfer encoding and charset undone."""
    return decode_bytes(decoded_body(part, wire), part.charset or "us-ascii")


def folded_header(part: MimePart) -> str:
    """Every header field of ``part`` as folded ``name: value`` lines, values decoded."""
    return "\n".join(
        fold(f.name.decode("latin-1") + ": " + decode_header(f.value)) for f in part.fields
    )


def folded_texts(root: MimePart, wire: bytes, *, with_headers: bool) -> list[str]:
    """The folded text of a message: its text bodies and the headers of attached messages,
    and (``with_headers``) every header of every part too."""
    out: list[str] = []
    if with_headers:
        out.append(folded_header(root))
    for part in root.walk():
        if part is not root and with_headers:
            out.append(folded_header(part))
        if part.message is not None:
            if not with_headers:
                out.append(folded_header(part.message))
            continue
        if has_text(part):
            out.append(fold(body_text(part, wire)))
    return out


def folded_pieces(root: MimePart, wire: bytes, *, with_headers: bool) -> Iterator[bytes | str]:
    """The texts ``folded_texts`` gives, in pieces no match crosses: folded text, or ASCII
    bytes whose ``lower()`` is their folded text (so that ASCII needs no decoding)."""
    if with_headers:
        yield from _header_pieces(root)
    for part in root.walk():
        if part is not root and with_headers:
            yield from _header_pieces(part)
        if part.message is not None:
            if not with_headers:
                yield from _header_pieces(part.message)
            continue
        if not has_text(part):
            continue
        data = decoded_body(part, wire)
        charset = part.charset or "us-ascii"
        if data.isascii() and is_ascii_charset(charset):
            yield data
        else:
            yield fold(decode_bytes(data, charset))


def _header_pieces(part: MimePart) -> Iterator[bytes | str]:
    plain: list[bytes] = []
    for f in part.fields:
        if f.name.isascii() and f.value.isascii() and b"=?" not in f.value:
            plain.append(f.name + b": " + f.value.replace(b"\r\n", b"").replace(b"\n", b""))
        else:
            yield fold(f.name.decode("latin-1") + ": " + decode_header(f.value))
    if plain:
        yield b"\n".join(plain)
