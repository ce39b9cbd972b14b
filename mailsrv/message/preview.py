"""A message's preview (RFC 8970 §3): the start of its text, for a list of messages.

The first text/plain or text/html part a reader would show (not an attachment), with its
transfer encoding and charset undone; HTML loses its tags, comments, scripts and styles and
has its character references resolved; runs of whitespace become one space; at most 256
characters, cut at a character boundary. A message without such text previews as "".
"""

from __future__ import annotations

import html
import re

from mailsrv.message.bodies import content_type, disposition
from mailsrv.message.structure import MimePart
from mailsrv.message.text import body_text

#: RFC 8970 §3: no more than 256 characters.
MAX_CHARS = 256
_SPACE = re.compile(r"\s+")
_HTML_DROP = re.compile(r"(?is)<(script|style|head)\b.*?</\1\s*>|<!--.*?-->")
_TAG = re.compile(r"(?s)<[^>]*>")


def preview_text(root: MimePart, wire: bytes) -> str:
    part = _first_text(root)
    if part is None:
        return ""
    text = body_text(part, wire)
    if content_type(part) == "text/html":
        text = html.unescape(_TAG.sub(" ", _HTML_DROP.sub(" ", text)))
    # a preview is shorter than its source: fold only as much as can be shown
    return _SPACE.sub(" ", text[: MAX_CHARS * 16]).strip()[:MAX_CHARS]


def _first_text(root: MimePart) -> MimePart | None:
    stack = [root]
    while stack:
        part = stack.pop()
        if disposition(part) == "attachment":
            continue
        kind = content_type(part)
        if kind in ("text/plain", "text/html"):
            return part
        if part.children:
            stack.extend(reversed(part.children))
    return None
