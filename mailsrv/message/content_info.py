"""The Content-* values of one MIME part, read from its header fields (RFC 2045, RFC 2183).

``content_info(fields, default_digest)`` picks the first occurrence of each Content-* field and
parses it with ``content_fields``; a part without Content-Type gets the RFC 2045/2046 default
(text/plain, or message/rfc822 inside multipart/digest). ``structure.py`` puts the result into the
``MimePart`` it builds. Nothing here raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from mailsrv.message.content_fields import (
    Params,
    parse_content_type,
    parse_disposition,
    parse_language,
    parse_token,
)
from mailsrv.message.headers import HeaderField


@dataclass(frozen=True, slots=True)
class ContentInfo:
    type: bytes
    subtype: bytes
    params: Params
    defaulted: bool  # True when there was no Content-Type (the default applied)
    encoding: bytes | None
    content_id: bytes | None
    description: bytes | None
    md5: bytes | None
    disposition: tuple[bytes, Params] | None
    language: tuple[bytes, ...] | None
    location: bytes | None


def content_info(fields: tuple[HeaderField, ...], default_digest: bool) -> ContentInfo:
    """The Content-* values of a part (first occurrence of each field wins)."""
    seen: dict[bytes, bytes] = {}
    for f in fields:
        key = f.name.lower()
        if key.startswith(b"content-") and key not in seen:
            seen[key] = f.value
    ctype = seen.get(b"content-type")
    main, sub, params = b"text", b"plain", cast(Params, ())
    if ctype is not None:
        main, sub, params = parse_content_type(ctype)
    elif default_digest:
        main, sub = b"message", b"rfc822"
    disposition = seen.get(b"content-disposition")
    language = seen.get(b"content-language")
    encoding = seen.get(b"content-transfer-encoding")
    return ContentInfo(
        type=main,
        subtype=sub,
        params=params,
        defaulted=ctype is None,
        encoding=None if encoding is None else parse_token(encoding),
        content_id=_simple(seen.get(b"content-id")),
        description=_simple(seen.get(b"content-description")),
        md5=_simple(seen.get(b"content-md5")),
        disposition=None if disposition is None else parse_disposition(disposition),
        language=None if language is None else parse_language(language),
        location=_simple(seen.get(b"content-location")),
    )


def _simple(value: bytes | None) -> bytes | None:
    """An unstructured value as IMAP shows it: unfolded, leading whitespace dropped."""
    if value is None:
        return None
    return value.replace(b"\r", b"").replace(b"\n", b"").lstrip(b" \t")
