"""Parsed views of one message for the console and the REST API.

Everything here is pure: bytes in, plain dictionaries and strings out, using the stdlib ``email``
package with ``policy.default``. Real mail is often malformed, so every header or part that cannot
be decoded falls back to a lossy but safe form instead of raising: the console must show broken
mail too (that is when people look at it).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

#: Headers shown in a message list and searched by ``q``.
SUMMARY_HEADERS = ("from", "to", "subject", "date")
#: Inline images larger than this are not turned into data: URLs (the iframe shows them broken).
MAX_INLINE_IMAGE = 2 * 1024 * 1024

_CID_RE = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)


def parse_message(data: bytes) -> EmailMessage:
    """The whole message as an ``EmailMessage`` (RFC 5322, MIME per RFC 2045)."""
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)  # noqa: S101 - policy.default always builds these
    return msg


def header_text(msg: Message, name: str) -> str:
    """One header's decoded value ('' when missing); raw text when it cannot be decoded."""
    try:
        value = msg.get(name)
        return "" if value is None else str(value)
    except Exception:  # the email package raises odd errors on some malformed headers
        raw = msg.get_all(name, failobj=[])
        return " ".join(str(v) for v in raw) if raw else ""


def all_headers(msg: Message) -> list[list[str]]:
    """Every header as ``[name, decoded value]`` in message order (raw text if undecodable)."""
    out: list[list[str]] = []
    for name, raw in msg.raw_items():
        try:
            value = str(msg.policy.header_fetch_parse(name, raw))
        except Exception:
            value = str(raw)
        out.append([name, value])
    return out


def summarize(header_block: bytes) -> dict[str, str]:
    """From, To, Subject and Date of a header block, decoded (RFC 2047) for listing."""
    msg = BytesParser(policy=policy.default).parsebytes(header_block, headersonly=True)
    return {name: header_text(msg, name) for name in SUMMARY_HEADERS}


def date_iso(value: str) -> str | None:
    """A Date header as ISO 8601, or None when it does not parse."""
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def part_text(part: Message) -> str:
    """A text part's content as str with LF line ends; bad charsets fall back to UTF-8."""
    text = ""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            text = content
    except (LookupError, UnicodeError, KeyError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return text.replace("\r\n", "\n")


@dataclass(frozen=True, slots=True)
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int
    inline: bool
    content_id: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "inline": self.inline,
            "content_id": self.content_id,
        }


def _leaf_parts(msg: Message) -> list[Message]:
    """Non-multipart parts in order; an attached message/rfc822 counts as one part."""
    out: list[Message] = []
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop(0)
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[:0] = [p for p in payload if isinstance(p, Message)]
            continue
        out.append(part)
    return out


def bodies(msg: EmailMessage) -> tuple[Message | None, Message | None]:
    """The text/plain and text/html parts a mail reader would show (RFC 2046 §5.1.4)."""
    try:
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
    except (KeyError, ValueError, AttributeError):
        return None, None
    return text, html


def _payload_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=policy.default)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        # Only the last path segment: a name like "../../x" must never look like a path.
        name = re.split(r"[\\/]", name)[-1].strip().replace("\x00", "")
    if not name:
        subtype = part.get_content_subtype() or "bin"
        name = f"part-{index}.{'eml' if subtype == 'rfc822' else subtype}"
    return name


def attachment_parts(msg: EmailMessage) -> list[tuple[Attachment, Message]]:
    """Every part that is not one of the shown bodies, numbered from 0 in message order."""
    text, html = bodies(msg)
    shown = {id(p) for p in (text, html) if p is not None}
    out: list[tuple[Attachment, Message]] = []
    for part in _leaf_parts(msg):
        if id(part) in shown:
            continue
        index = len(out)
        cid = part.get("Content-ID")
        disposition = part.get_content_disposition()
        att = Attachment(
            index=index,
            filename=_filename(part, index),
            content_type=part.get_content_type(),
            size=len(_payload_bytes(part)),
            inline=disposition == "inline" or (disposition is None and cid is not None),
            content_id=str(cid).strip("<> ") if cid else None,
        )
        out.append((att, part))
    return out


def attachment(data: bytes, index: int) -> tuple[Attachment, bytes] | None:
    """Attachment number ``index`` and its decoded bytes, or None when there is none."""
    parts = attachment_parts(parse_message(data))
    if not 0 <= index < len(parts):
        return None
    att, part = parts[index]
    return att, _payload_bytes(part)


def html_body(data: bytes) -> str | None:
    """The HTML body with ``cid:`` images turned into data: URLs (the only images CSP allows)."""
    msg = parse_message(data)
    _, html = bodies(msg)
    if html is None:
        return None
    images: dict[str, str] = {}
    for att, part in attachment_parts(msg):
        if att.content_id and att.content_type.startswith("image/"):
            raw = _payload_bytes(part)
            if len(raw) <= MAX_INLINE_IMAGE:
                encoded = base64.b64encode(raw).decode("ascii")
                images[att.content_id] = f"data:{att.content_type};base64,{encoded}"
    text = part_text(html)
    return _CID_RE.sub(lambda m: images.get(m.group(1), m.group(0)), text)


def message_view(data: bytes) -> dict[str, object]:
    """The parsed view the API returns: headers, text part, whether there is HTML, attachments."""
    msg = parse_message(data)
    text, html = bodies(msg)
    date = header_text(msg, "date")
    return {
        "headers": all_headers(msg),
        "from": header_text(msg, "from"),
        "to": header_text(msg, "to"),
        "cc": header_text(msg, "cc"),
        "subject": header_text(msg, "subject"),
        "date": date,
        "date_iso": date_iso(date),
        "message_id": header_text(msg, "message-id"),
        "text": part_text(text) if text is not None else None,
        "has_html": html is not None,
        "attachments": [att.as_dict() for att, _ in attachment_parts(msg)],
        "defects": len(msg.defects),
    }
