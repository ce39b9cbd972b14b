"""Decoding header text: RFC 2047 encoded words and charsets.

``decode_header`` turns a raw header value (bytes as on the wire, maybe folded, maybe raw
UTF-8) into text: encoded words are decoded, whitespace between two adjacent encoded words
is dropped (RFC 2047 §6.2), folding is removed. Unknown charsets and broken words never raise.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

_ENCODED_WORD = re.compile(rb"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(rb"\s*")


def charset_codec(charset: str) -> str | None:
    """The Python codec name for a MIME charset, or None when unknown."""
    name = charset.strip().strip('"').lower()
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        return "utf-8"  # raw 8-bit text labelled ASCII is nearly always UTF-8 in practice
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str) -> str:
    """``data`` decoded from ``charset``; unknown charsets fall back to UTF-8, then Latin-1."""
    codec = charset_codec(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            return data.decode(codec, "replace") if codec != "utf-8" else _guess(data)
    return _guess(data)


def _guess(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_word(charset: bytes, kind: bytes, text: bytes) -> str | None:
    try:
        if kind in b"Bb":
            padded = text + b"=" * (-len(text) % 4)
            raw = base64.b64decode(padded, validate=True)
        else:
            raw = binascii.a2b_qp(text.replace(b"_", b" "), header=False)
    except (binascii.Error, ValueError):
        return None
    return decode_bytes(raw, charset.decode("ascii", "replace"))


def decode_header(value: bytes) -> str:
    """A raw header value as text: unfolded, RFC 2047 words decoded, raw 8-bit as UTF-8."""
    value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    out: list[str] = []
    pos = 0
    last_was_word = False
    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos : m.start()]
        decoded = _decode_word(m.group(1), m.group(2), m.group(3))
        if decoded is None:
            continue
        if not (last_was_word and _BETWEEN_WORDS.fullmatch(gap)):
            out.append(_guess(gap))
        out.append(decoded)
        pos = m.end()
        last_was_word = True
    out.append(_guess(value[pos:]))
    return "".join(out)
