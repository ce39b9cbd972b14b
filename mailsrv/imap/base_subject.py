"""The base subject of a message (RFC 5256 §2.1), which SORT SUBJECT and THREAD compare.

``base_subject(raw)`` decodes the Subject's RFC 2047 words, collapses white space and then
strips, over and over, what mail programs put around a subject: ``(fwd)`` trailers,
``Re:``/``Fw:``/``Fwd:`` leaders with optional ``[blob]``s, leading ``[blob]``s (unless that
would leave nothing) and the ``[fwd: ...]`` wrapper. It says whether anything but blobs was
removed: THREAD=REFERENCES groups replies under the original (RFC 5256 §3 step 5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailsrv.message.encoded_words import decode_header

_WSP_RUN = re.compile(r"[ \t\r\n]+")
#: A ``subj-trailer`` (RFC 5256 §5): ``(fwd)`` or white space at the end.
_TRAILER = re.compile(r"(?:[ \t]|\(fwd\))+\Z", re.IGNORECASE)
#: ``subj-blob``: ``[`` anything but brackets ``]``, then white space.
_BLOB = re.compile(r"\[[^\[\]]*\][ \t]*")
#: ``subj-leader``: ``*subj-blob subj-refwd`` (group 1) or white space; ``subj-refwd`` is
#: ``re``/``fw``/``fwd``, white space, at most one blob, and ``:``.
_LEADER = re.compile(
    r"((?:\[[^\[\]]*\][ \t]*)*(?:re|fwd?)[ \t]*(?:\[[^\[\]]*\][ \t]*)?:)|[ \t]+",
    re.IGNORECASE,
)
_FWD_HEAD = re.compile(r"\[fwd:", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BaseSubject:
    """The base subject (decoded text, not case-mapped) and whether it was a reply/forward."""

    text: str
    reply: bool


def base_subject(raw: bytes | None) -> BaseSubject:
    """RFC 5256 §2.1 steps 1-6 on a raw Subject value (None: no Subject field)."""
    if raw is None:
        return BaseSubject("", False)
    text = _WSP_RUN.sub(" ", decode_header(raw))  # step 1
    reply = False
    while True:
        text, trailed = _strip_trailers(text)  # step 2
        reply = reply or trailed
        while True:  # steps 3-5
            text, led = _strip_leader(text)
            reply = reply or led
            if not led and not _strip_blob(text)[1]:
                break
            text, _ = _strip_blob(text)
        unwrapped = _unwrap_fwd(text)  # step 6
        if unwrapped is None:
            return BaseSubject(text, reply)
        text, reply = unwrapped, True


def _strip_trailers(text: str) -> tuple[str, bool]:
    m = _TRAILER.search(text)
    if m is None:
        return text, False
    stripped = text[: m.start()]
    return stripped, "(" in m.group(0)


def _strip_leader(text: str) -> tuple[str, bool]:
    """Step 3: remove every leading ``subj-leader`` (white space, or blobs and a refwd)."""
    replied = False
    while (m := _LEADER.match(text)) is not None and m.end():
        replied = replied or m.group(1) is not None
        text = text[m.end() :]
    return text, replied


def _strip_blob(text: str) -> tuple[str, bool]:
    """Step 4: a leading blob goes unless nothing but the blob is left."""
    m = _BLOB.match(text)
    if m is None or m.end() == len(text):
        return text, False
    return text[m.end() :], True


def _unwrap_fwd(text: str) -> str | None:
    """Step 6: ``[fwd: subject]`` becomes ``subject`` (None: not wrapped)."""
    if _FWD_HEAD.match(text) and text.endswith("]"):
        return text[5:-1]
    return None
