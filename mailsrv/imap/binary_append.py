"""APPEND of a ``~{n}`` literal (RFC 3516 §4.4): binary parts are stored as base64.

A literal8 may carry parts whose Content-Transfer-Encoding is ``binary``: bytes that are no
text (NULs, bare CR or LF). A Maildir message must be text, and ``BODY[part]`` must stay
sendable as an ordinary literal, so such a part is saved base64-encoded (76 characters a
line, CRLF between lines, as Dovecot saves it) with its field rewritten to ``base64``.
``BINARY[part]`` and ``BINARY.SIZE[part]`` then decode it back to exactly the bytes the
client appended. A multipart that says ``binary`` is left alone (only its leaves are
converted); everything else in the message is kept byte for byte.
"""

from __future__ import annotations

import base64

from mailsrv.message.structure import MimePart, parse_message

#: Characters per line of the base64 a binary part becomes.
LINE = 76


def base64_binary_parts(message: bytes) -> bytes:
    """``message`` with every binary leaf part base64-encoded (unchanged if there is none)."""
    if b"inary" not in message and b"INARY" not in message:
        return message
    edits: list[tuple[int, int, bytes]] = []
    _collect(parse_message(message, count_lines=False), message, edits)
    if not edits:
        return message
    out: list[bytes] = []
    pos = 0
    for start, end, replacement in sorted(edits):
        out += (message[pos:start], replacement)
        pos = end
    out.append(message[pos:])
    return b"".join(out)


def _collect(part: MimePart, message: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    if part.is_multipart:
        for child in part.children:
            _collect(child, message, edits)
        return
    field = next((f for f in part.fields if f.name.lower() == b"content-transfer-encoding"), None)
    if field is None or field.value.strip().lower() != b"binary":
        if part.message is not None:
            _collect(part.message, message, edits)
        return
    text = message[field.start : field.end]
    ending = text[len(text.rstrip(b"\r\n")) :]
    edits.append((field.start, field.end, field.name + b": base64" + ending))
    encoded = base64.b64encode(part.body(message))
    lines = [encoded[i : i + LINE] for i in range(0, len(encoded), LINE)]
    edits.append((part.body_start, part.end, b"\r\n".join(lines)))
