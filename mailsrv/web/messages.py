"""Parsed views of one message for the console and the REST API.

Everything here is pure: bytes in, plain dictionaries and strings out, read with
``mailsrv.message`` (the library IMAP answers FETCH from), so an attachment's ``part`` is its
IMAP part number: ``BODY[part]`` over IMAP is the same part. Real mail is often malformed, so
nothing here raises on it: the console must show broken mail too (that is when people look at
it).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from mailsrv.message import bodies
from mailsrv.message.encoded_words import decode_bytes, decode_header
from mailsrv.message.headers import HeaderField, parse_header_fields
from mailsrv.message.part_numbers import part_name
from mailsrv.message.structure import MimePart, defects, parse_message
from mailsrv.message.text import body_text
from mailsrv.scan.scan_fields import read_scan

#: Headers shown in a message list and searched by ``q``.
SUMMARY_HEADERS = ("from", "to", "subject", "date")
#: Inline images larger than this are not turned into data: URLs (the iframe shows them broken).
MAX_INLINE_IMAGE = 2 * 1024 * 1024

_CID_RE = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)


def header_text(fields: tuple[HeaderField, ...], name: str) -> str:
    """The first ``name`` field's decoded value (RFC 2047), '' when there is none."""
    wanted = name.lower().encode()
    for f in fields:
        if f.name.lower() == wanted:
            return decode_header(f.value).strip()
    return ""


def all_headers(fields: tuple[HeaderField, ...]) -> list[list[str]]:
    """Every header as ``[name, decoded value]`` in message order."""
    return [[decode_bytes(f.name, "utf-8"), decode_header(f.value).strip()] for f in fields]


def summarize(header_block: bytes) -> dict[str, str]:
    """From, To, Subject and Date of a header block, decoded (RFC 2047) for listing."""
    fields = parse_header_fields(header_block)[0]
    return {name: header_text(fields, name) for name in SUMMARY_HEADERS}


def scan_view(header_block: bytes) -> dict[str, object] | None:
    """The scan verdict the message carries (``X-Spam-*``, ``X-Virus-Status``), or None."""
    result = read_scan(header_block)
    return None if result is None else result.as_dict()


def date_iso(value: str) -> str | None:
    """A Date header as ISO 8601, or None when it does not parse."""
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def part_text(part: MimePart, wire: bytes) -> str:
    """A text part's content as str with LF line ends; bad charsets fall back to UTF-8."""
    return body_text(part, wire).replace("\r\n", "\n")


@dataclass(frozen=True, slots=True)
class Attachment:
    index: int
    part: str  # the IMAP part number, e.g. "1.2"
    filename: str
    content_type: str
    size: int
    inline: bool
    content_id: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "part": self.part,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "inline": self.inline,
            "content_id": self.content_id,
        }


def _filename(part: MimePart, number: str) -> str:
    name = bodies.filename(part)
    if name:
        # Only the last path segment: a name like "../../x" must never look like a path.
        name = re.split(r"[\\/]", name)[-1].strip().replace("\x00", "")
    if not name:
        subtype = bodies.content_type(part).partition("/")[2] or "bin"
        name = f"part-{number}.{'eml' if subtype == 'rfc822' else subtype}"
    return name


def attachment_parts(root: MimePart, wire: bytes) -> list[tuple[Attachment, bytes]]:
    """Every part that is not one of the shown bodies, numbered from 0 in message order,
    with its decoded content."""
    out: list[tuple[Attachment, bytes]] = []
    for number, part in bodies.attachments(root):
        payload = bodies.payload(part, wire)
        cid = bodies.content_id(part)
        disposition = bodies.disposition(part)
        att = Attachment(
            index=len(out),
            part=part_name(number),
            filename=_filename(part, part_name(number)),
            content_type=bodies.content_type(part),
            size=len(payload),
            inline=disposition == "inline" or (disposition is None and cid is not None),
            content_id=cid,
        )
        out.append((att, payload))
    return out


def attachment(data: bytes, index: int) -> tuple[Attachment, bytes] | None:
    """Attachment number ``index`` and its decoded bytes, or None when there is none."""
    parts = attachment_parts(parse_message(data), data)
    if not 0 <= index < len(parts):
        return None
    return parts[index]


def html_body(data: bytes) -> str | None:
    """The HTML body with ``cid:`` images turned into data: URLs (the only images CSP allows)."""
    root = parse_message(data)
    html = bodies.find_body(root, "html")
    if html is None:
        return None
    images: dict[str, str] = {}
    for att, raw in attachment_parts(root, data):
        if (
            att.content_id
            and att.content_type.startswith("image/")
            and len(raw) <= MAX_INLINE_IMAGE
        ):
            encoded = base64.b64encode(raw).decode("ascii")
            images[att.content_id] = f"data:{att.content_type};base64,{encoded}"
    text = part_text(html, data)
    return _CID_RE.sub(lambda m: images.get(m.group(1), m.group(0)), text)


def message_view(data: bytes) -> dict[str, object]:
    """The parsed view the API returns: headers, text part, whether there is HTML, attachments."""
    root = parse_message(data)
    text = bodies.find_body(root, "plain")
    fields = root.fields
    date = header_text(fields, "date")
    return {
        "headers": all_headers(fields),
        "from": header_text(fields, "from"),
        "to": header_text(fields, "to"),
        "cc": header_text(fields, "cc"),
        "subject": header_text(fields, "subject"),
        "date": date,
        "date_iso": date_iso(date),
        "message_id": header_text(fields, "message-id"),
        "text": part_text(text, data) if text is not None else None,
        "has_html": bodies.find_body(root, "html") is not None,
        "attachments": [att.as_dict() for att, _ in attachment_parts(root, data)],
        "defects": defects(root, data),
        "scan": scan_view(root.header(data)),
    }
