"""Redaction of secrets and summarizing of bulk data in transcript lines.

Passwords never reach a transcript: POP3 ``PASS``/``APOP``, IMAP ``LOGIN``, and every SASL
exchange (``AUTH``/``AUTHENTICATE`` initial responses and continuation lines, which the listener
marks ``sensitive``) are shown with the secret replaced by ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_POP3_SECRET = re.compile(rb"^(PASS|APOP \S+)\s.*$", re.IGNORECASE | re.DOTALL)
_POP3_AUTH_IR = re.compile(rb"^(AUTH\s+\S+)\s+\S.*$", re.IGNORECASE | re.DOTALL)
_IMAP_LOGIN = re.compile(rb"^(\S+\s+LOGIN\s+)(.*)$", re.IGNORECASE | re.DOTALL)
_IMAP_AUTH_IR = re.compile(rb"^(\S+\s+AUTHENTICATE\s+\S+)\s+\S.*$", re.IGNORECASE | re.DOTALL)
_SMTP_AUTH_IR = re.compile(rb"^(AUTH\s+\S+)\s+\S.*$", re.IGNORECASE | re.DOTALL)
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")


def _login_user_only(rest: bytes) -> bytes:
    """Keep the user name of ``LOGIN user password``: the first atom, quoted string or literal."""
    rest = rest.lstrip()
    if rest.startswith(b'"'):
        m = re.match(rb'"(?:[^"\\]|\\.)*"', rest)
        return (m.group(0) if m else b'"') + b" ***"
    m = re.match(rb"\{\d+\+?\}", rest)
    if m:
        return m.group(0) + b" ***"
    return rest.split(b" ", 1)[0].rstrip(b"\r\n") + b" ***"


def _summarize(data: bytes, limit: int) -> bytes:
    if len(data) <= limit:
        return data
    return _summary(data, len(data), limit)


def _summary(head: bytes, total: int, limit: int) -> bytes:
    """``first line ... {N bytes}``; only the start of ``head`` is looked at."""
    first = head[: min(limit, 120)].split(b"\r\n", 1)[0]
    return first + b" ... {%d bytes}" % total


def _eol_run(data: bytes) -> int:
    """How many CR/LF bytes end ``data`` (what ``rstrip`` would remove), without a copy."""
    n = 0
    while n < len(data) and data[-1 - n] in b"\r\n":
        n += 1
    return n


def redact_response(chunks: Sequence[bytes], limit: int) -> str:
    """A server response given in pieces, shown as ``redact_line`` would show it joined.

    Big responses (a whole message) are summarized from the first piece and the total length,
    so tracing never copies a message; the first piece must hold the status line.
    """
    total = sum(len(c) for c in chunks)
    if total <= limit + 2 or not chunks:
        return redact_line("", "S", b"".join(chunks), False, limit)
    eol = 0
    for chunk in reversed(chunks):
        run = _eol_run(chunk)
        eol += run
        if run < len(chunk):
            break
    if total - eol <= limit:
        return redact_line("", "S", b"".join(chunks), False, limit)
    return _summary(chunks[0], total - eol, limit).decode("utf-8", "replace")


def redact_line(
    protocol: str, direction: str, data: bytes | str, sensitive: bool, limit: int
) -> str:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    if sensitive:
        return "***"
    if direction == "C":
        stripped = raw.rstrip(b"\r\n")
        if protocol == "pop3":
            m = _POP3_SECRET.match(stripped) or _POP3_AUTH_IR.match(stripped)
            if m:
                stripped = m.group(1) + b" ***"
        elif protocol == "imap":
            m = _IMAP_LOGIN.match(stripped)
            if m:
                stripped = m.group(1) + _login_user_only(m.group(2))
            else:
                m = _IMAP_AUTH_IR.match(stripped)
                if m:
                    stripped = m.group(1) + b" ***"
        elif protocol in ("smtp", "lmtp"):
            m = _SMTP_AUTH_IR.match(stripped)
            if m:
                stripped = m.group(1) + b" ***"
        raw = stripped
    elif len(raw) > limit + 2 and (shown := len(raw) - _eol_run(raw)) > limit:
        return _summary(raw, shown, limit).decode("utf-8", "replace")  # without copying raw
    else:
        raw = raw.rstrip(b"\r\n")
    return _summarize(raw, limit).decode("utf-8", "replace")
