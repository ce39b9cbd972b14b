"""IMAP modified UTF-7 (RFC 3501 §5.1.3), the encoding of non-ASCII folder names on disk.

Printable ASCII stands for itself except ``&``, which is written ``&-``; any other run of
characters is UTF-16BE, base64 with ``,`` in place of ``/`` and no padding, between ``&`` and ``-``.
"""

from __future__ import annotations

import base64


class MUTF7Error(ValueError):
    """Bytes that are not valid modified UTF-7."""


def _is_direct(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def _b64(run: str) -> str:
    raw = run.encode("utf-16-be")
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    """Unicode -> modified UTF-7."""
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append("&" + _b64("".join(run)) + "-")
                run.clear()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append("&" + _b64("".join(run)) + "-")
    return "".join(out)


def decode(text: str) -> str:
    """Modified UTF-7 -> Unicode; raises ``MUTF7Error`` on anything RFC 3501 does not allow."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if not _is_direct(ch):
            raise MUTF7Error("non-printable character in modified UTF-7")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise MUTF7Error("unterminated '&' shift in modified UTF-7")
        chunk = text[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        out.append(_decode_chunk(chunk))
    return "".join(out)


def _decode_chunk(chunk: str) -> str:
    if "/" in chunk or "=" in chunk:
        raise MUTF7Error("'/' or padding inside a modified UTF-7 shift")
    padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except ValueError as exc:
        raise MUTF7Error("bad base64 in modified UTF-7") from exc
    if len(raw) % 2:
        raise MUTF7Error("odd number of octets in a modified UTF-7 shift")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise MUTF7Error("bad UTF-16 in modified UTF-7") from exc
    if any(_is_direct(c) for c in text):
        raise MUTF7Error("printable ASCII must not be base64-encoded in modified UTF-7")
    return text
