"""``DataReader``: the sans-I/O core of the SMTP DATA transfer (RFC 5321 §4.1.1.4, §4.5.2).

The message comes in as large pieces, never line by line: the reader finds the end
(``CRLF . CRLF``, the first line that is a lone dot), counts the bytes against the size limit
while they arrive (past it nothing more is kept, the rest is only drained), checks the line
length, and undoes the dot-stuffing once at the end. Lines end at CRLF only; a bare LF or CR
is message data, as aiosmtpd reads it.

``next_read()`` says how much the adapter may ask of its stream without ever reading past the
end of the message (the client may pipeline its next command right after the dot):

- ``0``: read up to and including the next ``CRLF . CRLF`` (``StreamReader.readuntil``); no end
  of the message can start inside the bytes already fed, so the first one ahead is the end;
- ``n > 0``: the bytes fed so far end like the start of ``CRLF . CRLF``; read exactly ``n``,
  which the client must send even if they are the end of the message.

``feed(piece)`` takes any piece (byte by byte works) and returns how much of it belonged to the
message; the rest is what the client sent after the dot.
"""

from __future__ import annotations

import enum

#: The end of the message: the CRLF ending its last line, a dot, CRLF.
TERMINATOR = b"\r\n.\r\n"
_END_LINE = len(b".\r\n")


class DataState(enum.Enum):
    """How the transfer went: the message, or why it is refused once it has ended."""

    NOMINAL = "nominal"
    TOO_LONG = "too long"  # a line longer than the limit: 500
    TOO_MUCH = "too much"  # more than the size limit: 552


class DataReader:
    """One DATA transfer: feed it pieces until ``done``; then ``state`` and ``content()``."""

    def __init__(self, size_limit: int | None, line_limit: int) -> None:
        self.size_limit = size_limit or None
        self.line_limit = line_limit
        self.state = DataState.NOMINAL
        self.done = False
        self.received = 0  # bytes of the transfer so far, dot-stuffing and final dot included
        self._pieces: list[bytes] = []
        # The last bytes of the stream, as if a CRLF came before the first line: a message
        # that is only the dot ends there too.
        self._tail = b"\r\n"
        self._line = 0  # length of the line not yet ended, CR included
        self._cr = False  # the last byte fed was a CR

    def next_read(self) -> int:
        """0: read through the next ``TERMINATOR``; n: read exactly n bytes."""
        tail = self._tail
        for size in range(len(TERMINATOR) - 1, 0, -1):
            if tail.endswith(TERMINATOR[:size]):
                return len(TERMINATOR) - size
        return 0

    def feed(self, piece: bytes) -> int:
        """Take ``piece``; returns how many of its bytes were the message's (all, or up to and
        including the final dot line)."""
        if self.done or not piece:
            return 0
        window = self._tail + piece
        found = window.find(TERMINATOR)
        used = len(piece) if found < 0 else found + len(TERMINATOR) - len(self._tail)
        if used < len(piece):
            piece = piece[:used]
            window = self._tail + piece
        self._tail = window[-(len(TERMINATOR) - 1) :]
        self.received += used
        if self.state is DataState.NOMINAL:
            self._check_lines(piece)
        over = self.size_limit is not None and self.received - _END_LINE > self.size_limit
        if over and self.state is DataState.NOMINAL:
            self.state = DataState.TOO_MUCH  # the final dot line is not the message's
        if self.state is DataState.NOMINAL:
            self._pieces.append(piece)
        else:
            self._pieces.clear()  # refused: the rest is drained, not kept
        if found >= 0:
            self.done = True
        return used

    def _check_lines(self, piece: bytes) -> None:
        """``TOO_LONG`` once a line (CRLF included) is longer than ``line_limit``."""
        if self._cr and piece[:1] == b"\n":  # a CRLF split between two pieces
            if self._line + 1 > self.line_limit:
                self.state = DataState.TOO_LONG
                return
            self._line = -1  # the LF below ends the line
        self._cr = piece.endswith(b"\r")
        last = piece.rfind(b"\r\n")
        if last < 0:
            self._line += len(piece)
        elif self._line + len(piece) <= self.line_limit:
            self._line = len(piece) - last - 2  # no line in here can be too long
        else:
            lines = piece.split(b"\r\n")
            first = self._line + len(lines[0]) + 2
            inner = max((len(line) + 2 for line in lines[1:-1]), default=0)
            if max(first, inner) > self.line_limit:
                self.state = DataState.TOO_LONG
                return
            self._line = len(lines[-1])
        if self._line + (1 if self._cr else 2) > self.line_limit:
            # Even if its CRLF (or the LF after its CR) came next, it is too long.
            self.state = DataState.TOO_LONG

    @property
    def buffered(self) -> int:
        """Bytes kept for the message (0 once it is refused: the rest is only drained)."""
        return sum(map(len, self._pieces))

    def content(self) -> bytes:
        """The message as the client meant it: without the final dot line, dots unstuffed."""
        raw = b"".join(self._pieces)[:-_END_LINE]
        if raw.startswith(b".") or b"\r\n." in raw:
            raw = (b"\r\n" + raw).replace(b"\r\n.", b"\r\n")[2:]
        return raw
