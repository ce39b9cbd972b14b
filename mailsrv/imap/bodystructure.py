"""FETCH BODY and BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2).

Sizes are the body octets a ``BODY[part]`` fetch returns and line counts are the LFs in
them, so a client can rely on both. The output matches Dovecot's byte for byte, in
particular: type and parameter names keep the case they were written in, a text part with
no charset gets ``("charset" "us-ascii")``, RFC 2231 continuations are joined (a charset-
encoded value stays encoded under ``name*``), and the body MD5 is the Content-MD5 header.
"""

from __future__ import annotations

from mailsrv.imap.envelope import envelope
from mailsrv.imap.strings import literal, quote_string
from mailsrv.message.content_fields import Params
from mailsrv.message.part_numbers import encapsulated
from mailsrv.message.structure import MimePart

_DEFAULT_CHARSET = (b"charset", b"us-ascii")


def _string(value: bytes) -> bytes:
    if value.isascii() and b"\r" not in value and b"\n" not in value and b"\0" not in value:
        return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    quoted = quote_string(value, limit=None)
    return literal(value) if quoted is None else quoted


def _nstring(value: bytes | None) -> bytes:
    return b"NIL" if value is None else _string(value)


def _params(params: Params, *, text: bool = False) -> bytes:
    pairs = list(params)
    if text and not any(k.lower() == b"charset" for k, _ in pairs):
        pairs.append(_DEFAULT_CHARSET)
    if not pairs:
        return b"NIL"
    return b"(" + b" ".join(_string(k) + b" " + _string(v) for k, v in pairs) + b")"


def _extension(part: MimePart) -> list[bytes]:
    """body-fld-dsp, body-fld-lang and body-fld-loc, shared by every kind of part."""
    if part.disposition is None:
        disposition = b"NIL"
    else:
        kind, params = part.disposition
        disposition = b"(" + _string(kind) + b" " + _params(params) + b")"
    if not part.language:
        language = b"NIL"
    else:
        language = b"(" + b" ".join(_string(tag) for tag in part.language) + b")"
    return [disposition, language, _nstring(part.location)]


def body_structure(part: MimePart, *, extended: bool, rev2: bool = False) -> bytes:
    """BODY (``extended=False``) or BODYSTRUCTURE (``extended=True``) of ``part``."""
    if part.children:
        inner = b"".join(
            body_structure(child, extended=extended, rev2=rev2) for child in part.children
        )
        items = [inner, _string(part.subtype)]
        if extended:
            items += [_params(part.params), *_extension(part)]
        return b"(" + b" ".join(items) + b")"
    is_text = part.is_text and bool(part.subtype)
    items = [
        _string(part.type),
        _string(part.subtype),
        _params(part.params, text=is_text),
        _nstring(part.content_id),
        _nstring(part.description),
        _string(part.encoding if part.encoding is not None else b"7bit"),
        b"%d" % part.body_size,
    ]
    message = encapsulated(part, include_global=rev2)
    if message is not None:
        items += [
            envelope(message),
            body_structure(message, extended=extended, rev2=rev2),
            b"%d" % part.lines,
        ]
    elif is_text:
        items.append(b"%d" % part.lines)
    if extended:
        items += [_nstring(part.md5), *_extension(part)]
    return b"(" + b" ".join(items) + b")"
