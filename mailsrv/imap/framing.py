"""IMAP command framing: bytes in, whole commands with their literals out (RFC 9051 §2.2, §4.3,
§7.5). The core (``core.py``) drives it and adds the connection state on top.

How it works: ``receive_data`` appends to a buffer; ``next_command`` cuts one line at a time.
A line that ends in a literal announcement ``{n}`` / ``{n+}`` (LITERAL+, RFC 7888) is kept, the
size is checked against the limit *before* anything is buffered (the message limit for APPEND,
a smaller one for every other literal), a ``+`` continuation is queued for a synchronizing
literal, and the core waits for exactly n bytes before reading the next line segment. When the
last segment arrives, the whole command (segments joined by CRLF, literals spliced in) goes to
the parser.

Over-limit literals: a synchronizing one is refused at once (``NO [TOOBIG]`` for APPEND, ``BAD``
otherwise) and the client, never having seen ``+``, abandons the command; a non-synchronizing one
is already on its way, so its n bytes are swallowed (never buffered) along with the rest of the
command. A line longer than ``max_line`` gets a tagged BAD and is skipped to its end.

Line ends: a bare LF is accepted as the end of a command line, as Dovecot and most servers do,
because some scripted clients (``nc``, hand-written tests) send LF only, and reading it as
data instead would leave them hanging with no answer. Literal lengths are always exact.
"""

from __future__ import annotations

import re
from typing import Final

from mailsrv.errors import PeerError
from mailsrv.imap.commands import Command, FetchItem, InvalidCommand
from mailsrv.imap.parser import parse_command

#: Default limit for literals outside APPEND (login names, search strings, folder names).
MAX_OTHER_LITERAL = 64 * 1024
#: All the literals of one APPEND together, in message limits: a MULTIAPPEND (RFC 3502) is held
#: in memory until its last message is in, so that all go in or none; this bounds that memory.
APPEND_TOTAL_MESSAGES = 4

_LITERAL_END = re.compile(rb"~?\{(\d{1,19})(\+?)\}\Z")
_TAG = re.compile(rb"([\x21-\x7e]+?)[ \r\n]")
_APPEND = re.compile(rb"\S+ +APPEND ", re.IGNORECASE)


class NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: ``next_command`` / ``next_line`` have nothing complete yet: feed more bytes.
NEED_DATA: Final = NeedData()


class CommandFramer:
    """Cuts commands (with their literals) out of the input stream."""

    def __init__(
        self,
        *,
        max_line: int,
        max_append: int,
        max_literal: int = MAX_OTHER_LITERAL,
        max_nonsync: int | None = None,
        memo: dict[bytes, tuple[FetchItem, ...]] | None = None,
    ) -> None:
        #: FETCH item lists already parsed (shared by the server's sessions), or a private one.
        self._memo: dict[bytes, tuple[FetchItem, ...]] = {} if memo is None else memo
        self.max_line = max_line
        self.max_append = max_append
        self.max_literal = min(max_literal, max_append)
        self.max_append_total = max_append * APPEND_TOTAL_MESSAGES
        #: The largest non-synchronizing literal taken: None with LITERAL+, 4096 with LITERAL-
        #: (RFC 7888 §4), 0 for a server with neither (a persona's, ``mailsrv.personas``).
        self.max_nonsync = max_nonsync
        self._buf = bytearray()
        self._parts: list[bytes] = []
        self._line_bytes = 0  # non-literal bytes of the command so far
        self._literal_bytes = 0  # literal bytes of the command so far
        self._literal_left = 0
        self._discarding = False  # swallowing an over-limit non-synchronizing literal
        self._skipping = False  # skipping the rest of a refused command's line
        self._out: list[bytes] = []
        #: The raw bytes of the last command returned (for transcripts).
        self.last_input = b""

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def data_to_send(self) -> bytes:
        """Continuation requests (``+ Ready for literal data``) to write before reading on."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def discard_input(self) -> None:
        """Drop everything buffered (plaintext pipelined after STARTTLS, RFC 9051 §6.2.1)."""
        self._buf.clear()
        self._parts.clear()
        self._line_bytes = self._literal_left = self._literal_bytes = 0
        self._discarding = self._skipping = False

    def take_input(self) -> bytes:
        """Everything buffered and not yet read, taken out (between commands: the input after
        COMPRESS is compressed, RFC 4978 §3, and comes back through the inflater)."""
        data = bytes(self._buf)
        self.discard_input()
        return data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def mid_command(self) -> bool:
        """Part of a command is in: a line without its end, or a literal still to come."""
        return bool(self._buf or self._parts or self._literal_left)

    def next_line(self) -> bytes | NeedData:
        """One raw line, without its line end (SASL responses, IDLE's DONE)."""
        idx = self._buf.find(b"\n")
        if idx < 0:
            if len(self._buf) > self.max_line:
                raise PeerError("line too long")
            return NEED_DATA
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def next_command(self) -> Command | InvalidCommand | NeedData:
        """The next complete command, an ``InvalidCommand`` to answer, or ``NEED_DATA``."""
        while True:
            if self._literal_left:
                if not self._take_literal():
                    return NEED_DATA
                continue
            idx = self._buf.find(b"\n")
            if idx < 0:
                if self._skipping:
                    self._buf.clear()
                    return NEED_DATA
                if self._line_bytes + len(self._buf) <= self.max_line:
                    return NEED_DATA
                return self._too_long()
            line = bytes(self._buf[:idx])
            del self._buf[: idx + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            result = self._line(line)
            if result is not None:
                return result

    def _take_literal(self) -> bool:
        take = min(len(self._buf), self._literal_left)
        if self._discarding:
            del self._buf[:take]
            self._literal_left -= take
            if self._literal_left == 0:
                self._discarding = False
                self._skipping = True
            return self._literal_left == 0
        if take < self._literal_left:
            return False
        self._parts.append(bytes(self._buf[:take]))
        del self._buf[:take]
        self._literal_left = 0
        return True

    def _line(self, line: bytes) -> Command | InvalidCommand | None:
        m = _LITERAL_END.search(line)
        if self._skipping:
            # Rest of a refused command: follow its non-synchronizing literals to the end.
            if m is not None and m.group(2):
                self._literal_left, self._discarding = int(m.group(1)), True
            else:
                self._skipping = False
            return None
        self._line_bytes += len(line) + 2
        if self._line_bytes > self.max_line:
            if m is not None and m.group(2):
                self._literal_left, self._discarding = int(m.group(1)), True
            return self._refuse(line, "Command line too long", None, skip=False)
        if m is None:
            self._parts.append(line + b"\r\n")
            data = b"".join(self._parts)
            self.last_input = data
            self._parts.clear()
            self._line_bytes = self._literal_bytes = 0
            if not data.strip():
                return None  # an empty line: ignored, as clients sometimes send one
            return parse_command(data, self._memo)
        size, nonsync = int(m.group(1)), bool(m.group(2))
        head = self._parts[0] if self._parts else line
        append = _APPEND.match(head) is not None
        limit = self.max_append if append else self.max_literal
        if nonsync and self.max_nonsync is not None and size > self.max_nonsync:
            self._literal_left, self._discarding = size, True
            if self.max_nonsync == 0:
                return self._refuse(
                    line, "Non-synchronizing literals are not supported", None, skip=False
                )
            return self._refuse(
                line, "Non-synchronizing literal over 4096 octets (LITERAL-)", None, skip=False
            )
        self._literal_bytes += size
        if size > limit or (append and self._literal_bytes > self.max_append_total):
            self._discarding = nonsync
            self._literal_left = size if nonsync else 0
            if append:
                return self._refuse(line, "Message too large", "TOOBIG", skip=False)
            return self._refuse(line, "Literal too large", None, skip=False)
        self._parts.append(line + b"\r\n")
        self._literal_left = size
        if not nonsync:
            self._out.append(b"+ Ready for literal data\r\n")
        return None

    def _refuse(self, line: bytes, reason: str, code: str | None, *, skip: bool) -> InvalidCommand:
        head = self._parts[0] if self._parts else line
        self.last_input = head
        self._parts.clear()
        self._line_bytes = self._literal_bytes = 0
        self._skipping = skip
        return InvalidCommand(_tag_of(head), reason, code)

    def _too_long(self) -> InvalidCommand:
        head = self._parts[0] if self._parts else bytes(self._buf[:256])
        self.last_input = head
        self._buf.clear()
        self._parts.clear()
        self._line_bytes = self._literal_bytes = 0
        self._skipping = True
        return InvalidCommand(_tag_of(head), "Command line too long")


def _tag_of(head: bytes) -> str:
    m = _TAG.match(head + b" ")
    if m is None or any(c in m.group(1) for c in b'(){%*"\\+'):
        return "*"
    return m.group(1).decode("ascii")
