"""The sans-I/O POP3 core: bytes in, commands out, responses to bytes (RFC 1939 §3-6).

    core.receive_data(data)
    while (cmd := core.next_command()) is not NEED_DATA:
        wire += core.send(answer(cmd))

The core owns the line framing and the state machine: AUTHORIZATION -> TRANSACTION (after an
``+OK`` to PASS, APOP or AUTH) -> UPDATE (on the reply to QUIT in TRANSACTION). It learns the
outcome of a command from the response it is asked to send, so every command must be answered
before the next one is taken. It never touches a socket, a clock or the store.

Line ends: a bare LF ends a command line just like CRLF. POP3 clients never send data in which
a lone LF could mean anything else (there is no message upload in POP3), and scripts, telnet
and some embedded clients do send bare LF; accepting it costs nothing and cannot be used to
smuggle a command past a proxy, since every line is answered in order. A lone CR is not a line
end: it stays part of the line and makes it invalid.
"""

from __future__ import annotations

import enum

from mailsrv.errors import CoreMisuse
from mailsrv.pop3.commands import (
    Apop,
    Auth,
    Capa,
    Command,
    Dele,
    InvalidCommand,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    SaslResponse,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)
from mailsrv.pop3.parser import parse_command
from mailsrv.pop3.responses import Continuation, Err, Ok, Response, encode_chunks

#: RFC 2449 §4: a command line is at most 255 octets including CRLF.
DEFAULT_MAX_LINE = 255
#: SASL responses (RFC 5034 §4) carry base64 credentials, which may exceed a command line.
MAX_SASL_LINE = 8192


class State(enum.Enum):
    """RFC 1939 §3 session states."""

    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


#: The commands legal in each state (RFC 1939 §4-7, RFC 2449 §5 CAPA, RFC 2595 §4 STLS).
LEGAL: dict[State, frozenset[str]] = {
    State.AUTHORIZATION: frozenset(c.VERB for c in (User, Pass, Apop, Auth, Capa, Stls, Quit)),
    State.TRANSACTION: frozenset(
        c.VERB for c in (Stat, List, Retr, Dele, Noop, Rset, Quit, Top, Uidl, Capa)
    ),
    State.UPDATE: frozenset(),
}


class NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


#: ``next_command()`` has no complete line yet.
NEED_DATA = NeedData.NEED_DATA


class Pop3Protocol:
    """One connection's POP3 framing and state (see the module docstring)."""

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, tls: bool = False) -> None:
        self.state = State.AUTHORIZATION
        #: True once the connection is encrypted (implicit TLS, or after STLS).
        self.tls = tls
        #: After ``+OK`` to STLS: the adapter must run the handshake, then ``tls_established``.
        self.tls_pending = False
        #: After the reply to QUIT (or ``close()``): nothing more is read.
        self.closed = False
        #: The raw bytes of the line behind the last command (for transcripts).
        self.last_line = b""
        self._max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self._sasl = False
        self._pending: Command | InvalidCommand | None = None

    @property
    def in_sasl(self) -> bool:
        """True while an AUTH exchange waits for the client's next response line."""
        return self._sasl

    def receive_data(self, data: bytes) -> None:
        # RFC 2595 §4: anything pipelined after STLS, before the handshake, is thrown away.
        if self.closed or self.tls_pending:
            return
        self._buf += data

    def next_command(self) -> Command | InvalidCommand | NeedData:
        """The next complete command, an ``InvalidCommand``, or ``NEED_DATA``."""
        if self._pending is not None:
            raise CoreMisuse("the previous command has not been answered")
        if self.closed or self.tls_pending:
            return NEED_DATA
        while True:
            limit = MAX_SASL_LINE if self._sasl else self._max_line
            nl = self._buf.find(b"\n")
            if nl < 0:
                if self._discarding:
                    self._buf.clear()
                elif len(self._buf) >= limit:
                    # Too long already: answer now, then skip the rest of it up to its LF.
                    self.last_line = bytes(self._buf[:limit])
                    self._buf.clear()
                    self._discarding = True
                    return self._issue(InvalidCommand("line too long"))
                return NEED_DATA
            raw = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if self._discarding:
                self._discarding = False
                continue
            self.last_line = raw
            if len(raw) > limit:
                return self._issue(InvalidCommand("line too long"))
            return self._issue(self._parse(raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]))

    def _parse(self, line: bytes) -> Command | InvalidCommand:
        if self._sasl:
            return SaslResponse(line.decode("ascii", "replace"))
        cmd = parse_command(line)
        if isinstance(cmd, InvalidCommand) or cmd.VERB in LEGAL[self.state]:
            return cmd
        return InvalidCommand(f"{cmd.VERB} is not allowed in the {self.state.name} state", cmd.VERB)

    def _issue(self, cmd: Command | InvalidCommand) -> Command | InvalidCommand:
        self._pending = cmd
        return cmd

    def send(self, response: Response) -> bytes:
        """The bytes of ``response``, which answers the last command (or is unsolicited)."""
        return b"".join(self.send_chunks(response))

    def send_chunks(self, response: Response) -> list[bytes]:
        """``send`` as pieces to write in order: a message body is not copied (RFC 1939 §3)."""
        cmd, self._pending = self._pending, None
        if isinstance(response, Continuation):
            if not isinstance(cmd, Auth | SaslResponse):
                raise CoreMisuse("a continuation only answers AUTH")
            self._sasl = True
            return encode_chunks(response)
        self._sasl = False
        if isinstance(response, Ok):
            if isinstance(cmd, Pass | Apop | Auth | SaslResponse):
                if self.state is State.AUTHORIZATION:
                    self.state = State.TRANSACTION
            elif isinstance(cmd, Stls):
                self.tls_pending = True
                self._buf.clear()
                self._discarding = False
        if isinstance(cmd, Quit) and isinstance(response, Ok | Err):
            if self.state is State.TRANSACTION:
                self.state = State.UPDATE
            self.closed = True
        return encode_chunks(response)

    def tls_established(self) -> None:
        """The STLS handshake is done: read commands again, over TLS."""
        self.tls_pending = False
        self.tls = True

    def close(self) -> None:
        """Stop taking commands (the session decided to end the connection)."""
        self.closed = True
        self._buf.clear()
