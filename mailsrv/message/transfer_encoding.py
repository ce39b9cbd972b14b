"""Content-Transfer-Encoding decoders (RFC 2045 §6.7, §6.8).

Both are lenient: base64 ignores bytes outside its alphabet and a trailing partial group;
quoted-printable drops trailing blanks on a line, joins soft line breaks and leaves a
malformed ``=`` sequence as it is. Neither ever raises.
"""

from __future__ import annotations

import binascii
import re

_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_QP_TRAILING = re.compile(rb"[ \t]+(?=\r?\n|$)")
_QP_SOFT_BREAK = re.compile(rb"=[ \t]*\r?\n")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")

IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
KNOWN = IDENTITY | {"base64", "quoted-printable"}
#: Names uuencoded bodies go by. Not a MIME encoding (IMAP BINARY answers UNKNOWN-CTE for it),
#: but mail readers decode it for the reader, and so does the console.
UUENCODE = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})


class UnknownTransferEncoding(ValueError):
    """The part's Content-Transfer-Encoding is not one we can decode (RFC 3516 UNKNOWN-CTE)."""


def decode_base64(data: bytes) -> bytes:
    clean = _B64_JUNK.sub(b"", data.split(b"=", 1)[0])
    clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:
        return b""


def decode_quoted_printable(data: bytes) -> bytes:
    data = _QP_TRAILING.sub(b"", data)
    data = _QP_SOFT_BREAK.sub(b"", data)
    return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def decode_uuencode(data: bytes) -> bytes:
    """The file inside a uuencoded body (the lines between ``begin`` and ``end``); a broken
    line is decoded as far as its length byte says, or skipped."""
    out: list[bytes] = []
    inside = False
    for line in data.splitlines():
        if not inside:
            inside = line.startswith(b"begin ")
            continue
        if line.strip() == b"end":
            break
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Some encoders pad lines with extra characters: decode what the length promises.
            length = (((line[0] - 32) & 63) * 4 + 5) // 3 if line else 0
            try:
                out.append(binascii.a2b_uu(line[:length]))
            except binascii.Error:
                continue
    return b"".join(out)


def decode(data: bytes, encoding: str) -> bytes:
    """``data`` decoded from ``encoding`` (lower case); raises UnknownTransferEncoding."""
    if encoding in IDENTITY:
        return data
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return decode_quoted_printable(data)
    raise UnknownTransferEncoding(encoding)
