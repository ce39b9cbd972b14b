"""What a mail reader shows of a message: its text and HTML bodies, and the rest as attachments.

The body of a kind (``plain``, ``html``) is found the way readers find it (RFC 2046 §5.1.3-4,
RFC 2387): the first such text part in message order that is not an attachment, looking into
every part of a multipart except a multipart/related, where only its start part counts.
Every other leaf part is an attachment, named by its IMAP part number (``part_numbers``).
"""

from __future__ import annotations

from mailsrv.message.content_fields import decode_param, param
from mailsrv.message.encoded_words import decode_header
from mailsrv.message.part_numbers import leaf_parts
from mailsrv.message.structure import MimePart
from mailsrv.message.text import decoded_body
from mailsrv.message.transfer_encoding import UUENCODE, decode_uuencode


def content_type(part: MimePart) -> str:
    """``type/subtype`` in lower case; ``text/plain`` when the Content-Type is unreadable."""
    if not part.type or not part.subtype:
        return "text/plain"
    return part.mime_type


def disposition(part: MimePart) -> str | None:
    """The Content-Disposition type in lower case (``inline``, ``attachment``), or None."""
    if part.disposition is None:
        return None
    return part.disposition[0].decode("latin-1").lower()


def content_id(part: MimePart) -> str | None:
    """The Content-ID without its angle brackets, or None."""
    if part.content_id is None:
        return None
    return decode_header(part.content_id).strip("<> ") or None


def filename(part: MimePart) -> str | None:
    """The file name the part gives (Content-Disposition ``filename``, else Content-Type
    ``name``), decoded from RFC 2231 or RFC 2047; None when it gives none."""
    if part.disposition is not None:
        name = decode_param(part.disposition[1], "filename")
        if name:
            return name
    return decode_param(part.params, "name") or None


def find_body(root: MimePart, subtype: str) -> MimePart | None:
    """The text/``subtype`` part a reader shows as the message's body, or None."""
    stack = [root]
    while stack:
        part = stack.pop()
        if disposition(part) == "attachment":
            continue
        main, _, sub = content_type(part).partition("/")
        if main == "text":
            if sub == subtype:
                return part
            continue
        if main != "multipart" or not part.children:
            continue
        if sub == "related":
            stack.append(_related_start(part))
        else:
            stack.extend(reversed(part.children))
    return None


def _related_start(part: MimePart) -> MimePart:
    """The start part of a multipart/related: the one its ``start`` parameter names, or the
    first (RFC 2387 §3.2)."""
    start = param(part.params, "start")
    if start:
        for child in part.children:
            if child.content_id is not None and child.content_id.strip() == start.strip():
                return child
    return part.children[0]


def attachments(root: MimePart) -> list[tuple[tuple[int, ...], MimePart]]:
    """Every leaf part that is not the text or HTML body, with its part number, in order."""
    shown = [p for p in (find_body(root, "plain"), find_body(root, "html")) if p is not None]
    return [
        (number, part)
        for number, part in leaf_parts(root)
        if not any(part is body for body in shown)
    ]


def payload(part: MimePart, wire: bytes) -> bytes:
    """The content of a leaf part as a reader saves it: transfer encoding undone (uuencode
    too), an encapsulated message as it is."""
    if part.transfer_encoding in UUENCODE:
        return decode_uuencode(part.body(wire))
    return decoded_body(part, wire)
