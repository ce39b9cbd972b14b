"""SMTP's DATA in large pieces, sans-I/O: ``DotReader`` (the message up to CRLF.CRLF) and
``CommandScanner`` (where a ``DATA`` command line ends in the bytes a client sends).

How it works. ``DotReader`` keeps the dot-stuffed message in one buffer that starts with a
virtual CRLF, so the end of the message is simply the first CRLF "." CRLF in the buffer (a
message of no lines included), and unstuffing is one ``replace(CRLF ".", CRLF)``. Line lengths
are checked by jumping from line start to the last CRLF within one line limit, so a chunk costs
a few C-level searches, not one Python step per line. Once the message is refused (a line too
long, too many bytes) only the last four bytes are kept, to find the end.

The rules are aiosmtpd 1.4.6's ``smtp_DATA`` (RFC 5321 §4.5.2, §4.5.3.1.6): lines end at CRLF
(a bare LF or CR is content), a line that starts with "." loses it, the size counted is the
stuffed size of the lines before the final dot, and the first problem met decides the reply.
"""

from __future__ import annotations

import enum

CRLF = b"\r\n"
#: The end of the data, with the CRLF that ends the last line (RFC 5321 §4.1.1.4).
END = b"\r\n.\r\n"
#: The command lines aiosmtpd's loop hands to ``smtp_DATA``: longer ones get its 500 first.
COMMAND_SIZE_LIMIT = 512


class DataError(enum.Enum):
    """Why a message was refused once its final dot arrived (RFC 5321 §4.2.5: reply then)."""

    LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"  # aiosmtpd's words
    TOO_MUCH = "552 Error: Too much mail data"


class DotReader:
    """One message's DATA: ``feed`` bytes until it returns True, then read ``content`` (or
    ``error``) and ``rest`` (what the client sent after the final dot: its next commands)."""

    def __init__(self, size_limit: int | None, line_limit: int) -> None:
        self.size_limit = size_limit or None  # aiosmtpd: 0 means no limit
        self.line_limit = line_limit
        self.error: DataError | None = None
        self.done = False
        self.rest = b""
        self._buf = bytearray(CRLF)
        self._line_start = len(CRLF)  # in ``_buf``: the start of the line not yet ended
        self._end = -1

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; True once the final dot has come."""
        if self.done:
            raise ValueError("DATA already ended")
        search_from = max(len(self._buf) - (len(END) - 1), 0)
        self._buf += data
        end = self._buf.find(END, search_from)
        lines_end = len(self._buf) if end == -1 else end + len(CRLF)
        if self.error is None:
            self._check_lines(lines_end)
        limit = self.size_limit
        if self.error is None and limit is not None and self._line_start - len(CRLF) > limit:
            self.error = DataError.TOO_MUCH
        if end != -1:
            self.rest = bytes(self._buf[end + len(END) :])
            self._end = end
            self.done = True
        elif self.error is not None:
            del self._buf[: -(len(END) - 1)]  # refused: keep only what may begin the end
        return self.done

    def _check_lines(self, lines_end: int) -> None:
        """Walk the lines between ``_line_start`` and ``lines_end`` a line limit at a time."""
        pos, buf, limit = self._line_start, self._buf, self.line_limit
        while pos < lines_end:
            window_end = min(pos + limit, lines_end)
            last = buf.rfind(CRLF, pos, window_end)
            if last == -1:
                if lines_end - pos >= limit:  # no CRLF where one must be: the line is too long
                    too_much = self.size_limit is not None and pos - len(CRLF) > self.size_limit
                    self.error = DataError.TOO_MUCH if too_much else DataError.LINE_TOO_LONG
                break
            pos = last + len(CRLF)
        self._line_start = pos

    @property
    def content(self) -> bytes:
        """The message as the client meant it: dot-unstuffed, every line ending in CRLF."""
        if not self.done or self.error is not None:
            raise ValueError("no message")
        return bytes(self._buf[: self._end + len(CRLF)].replace(b"\r\n.", CRLF)[len(CRLF) :])


def data_command_end(data: bytes, partial: bytes) -> tuple[int, bytes]:
    """Where the first line that aiosmtpd's loop hands to ``smtp_DATA`` ends in ``data``
    (its index just after the LF, or -1), and the start of the line still unfinished.

    ``partial`` is the unfinished line before ``data``. aiosmtpd's loop reads lines to LF,
    strips CR and LF from the end, takes the word before the first space as the command
    (case-insensitive) and refuses lines over 512 octets before calling the method.
    """
    start = 0
    while True:
        newline = data.find(b"\n", start)
        if newline == -1:
            return -1, _line_head(partial + data[start:] if start == 0 else data[start:])
        line = (partial + data[start:newline] if start == 0 else data[start:newline]).rstrip(
            b"\r\n"
        )
        if len(line) <= COMMAND_SIZE_LIMIT and line[:5].upper() in (b"DATA", b"DATA "):
            return newline + 1, b""
        start = newline + 1


#: How much of an unfinished command line ``data_command_end`` keeps.
_HEAD = COMMAND_SIZE_LIMIT + 8


def _line_head(line: bytes) -> bytes:
    """``line`` cut to ``_HEAD`` octets without changing what it will be judged: cut CRs could
    only have been stripped from its end; anything else cut makes it too long for a command."""
    if len(line) <= _HEAD:
        return line
    if line[_HEAD:].strip(b"\r"):
        return b"x" * _HEAD
    return line[:_HEAD]
