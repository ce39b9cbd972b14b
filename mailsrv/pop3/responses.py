"""POP3 responses as values, and their wire form (RFC 1939 §3, RFC 2449 §8 response codes).

Multi-line responses are dot-stuffed at the byte level: a line starting with "." gets another
"." in front, and the block ends with ".\\r\\n" (RFC 1939 §3). Message bytes arrive from the store
in wire form (CRLF), so stuffing is one ``bytes.replace``, not a loop over lines, and most
messages need none at all. ``encode_chunks`` gives a response as pieces (status line, body,
terminator) so a big message is written as it came from the store, never copied into one
buffer with its status line.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsrv.message.wire import header_end

CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class Ok:
    """``+OK [CODE] text``."""

    text: str = ""
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Err:
    """``-ERR [CODE] text``; codes from RFC 2449 §8 / RFC 3206 (AUTH, SYS/TEMP, IN-USE ...)."""

    text: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class MultiLine:
    """``+OK text`` followed by ``body`` (CRLF lines), dot-stuffed, ended by ``.``."""

    text: str
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Continuation:
    """``+ challenge`` during AUTH (RFC 5034 §4); the challenge is already base64."""

    challenge: str = ""


@dataclass(frozen=True, slots=True)
class Raw:
    """A status line given whole (fault injection replies such as ``-ERR [SYS/TEMP] x``)."""

    line: str


Response = Ok | Err | MultiLine | Continuation | Raw


def _clean(text: str) -> bytes:
    # Text may carry client-supplied words; a CR or LF in it must never start a new reply line.
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")


def _status(status: bytes, text: str, code: str | None) -> bytes:
    out = status
    if code:
        out += b" [" + _clean(code) + b"]"
    if text:
        out += b" " + _clean(text)
    return out + CRLF


def dot_stuff(data: bytes) -> bytes:
    """The multi-line body for ``data`` (CRLF lines): stuffed, CRLF-ended, without the final dot."""
    return b"".join(_body_chunks(data))


#: From this size a body is checked for line-leading dots by hopping from dot to dot.
HOP_FROM = 32 * 1024
#: Dots looked at one by one before the check falls back to a plain substring search.
HOP_DOTS = 48


def needs_stuffing(data: bytes) -> bool:
    """Does a line of ``data`` (CRLF lines) start with "."?

    A big body is mostly base64 or long text with few dots: finding each "." (memchr, many GB/s)
    and looking at the two bytes before it beats searching for the three-byte ``CRLF "."``
    (about 1.5 GB/s). Text full of dots falls back to that search after ``HOP_DOTS`` of them.
    """
    if data[:1] == b".":
        return True
    if len(data) < HOP_FROM:
        return b"\r\n." in data
    find = data.find
    pos = find(b".", 1)
    for _ in range(HOP_DOTS):
        if pos < 0:
            return False
        if data[pos - 1] == 10 and pos >= 2 and data[pos - 2] == 13:
            return True
        pos = find(b".", pos + 1)
    return pos >= 0 and data.find(b"\r\n.", max(pos - 2, 0)) >= 0


def _body_chunks(data: bytes) -> list[bytes]:
    """``dot_stuff(data)`` as pieces; ``data`` itself (not a copy) when it needs no stuffing."""
    if not data:
        return []
    if needs_stuffing(data):
        data = data.replace(b"\r\n.", b"\r\n..")
        if data.startswith(b"."):
            data = b"." + data
    return [data] if data.endswith(CRLF) else [data, CRLF]


def dot_unstuff(block: bytes) -> bytes:
    """Inverse of ``dot_stuff`` (what a client does); for tests and the examples."""
    if block.startswith(b"."):
        block = block[1:]
    return block.replace(b"\r\n..", b"\r\n.")


def encode(response: Response) -> bytes:
    """The bytes of one response."""
    chunks = encode_chunks(response)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def encode_chunks(response: Response) -> list[bytes]:
    """The bytes of one response as pieces to write in order (see the module docstring)."""
    if isinstance(response, Ok):
        return [_status(b"+OK", response.text, response.code)]
    if isinstance(response, Err):
        return [_status(b"-ERR", response.text, response.code)]
    if isinstance(response, MultiLine):
        return [_status(b"+OK", response.text, None), *_body_chunks(response.body), b".\r\n"]
    if isinstance(response, Continuation):
        return [b"+ " + _clean(response.challenge) + CRLF]
    return [_clean(response.line) + CRLF]


def top_of(message: bytes, lines: int) -> bytes:
    """RFC 1939 §7 TOP: the header, the blank line, then the first ``lines`` body lines."""
    end = header_end(message)
    pos = end
    for _ in range(lines):
        if pos >= len(message):
            break
        nl = message.find(b"\n", pos)
        pos = len(message) if nl < 0 else nl + 1
    return message[:pos]


def uidl_of(uid: int, uidvalidity: int) -> str:
    """The unique-id listing of a message: Dovecot's ``%08Xu%08Xv``, as Dovecot 2.3 prints it.

    Dovecot's ``X`` modifier gives lower-case hex (checked against dovecot 2.3.19), so UIDLs stay
    the same for a client moving between Dovecot and mailsrv on one Maildir.
    """
    return f"{uid:08x}{uidvalidity:08x}"
