"""The sans-I/O IMAP core: bytes in, events out, and the connection's protocol state (RFC 9051
§3, §5.4).

    core.receive_data(data)
    while (event := core.next_event()) is not NEED_DATA:
        ...  # a command to run, a SASL response, the line that ends IDLE

The core owns what the protocol decides, not what the store says: the connection state (not
authenticated -> authenticated -> selected, logout), the read mode (commands, a SASL
continuation line, the DONE that ends IDLE), which commands each state allows, and the
STARTTLS switch. A command that is not allowed in the current state comes out as an
``InvalidCommand`` with the reason, so handlers never see it. The session moves the core on
with the transition methods once it knows the outcome (a login succeeded, a SELECT opened the
folder); a transition from the wrong state is a ``CoreMisuse``. It never touches a socket, a
clock or the store. COMPRESS (RFC 4978) is the same kind of switch: the core says when the
adapter must put deflate under it and hands back the input that came after the command.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from mailsrv.errors import CoreMisuse
from mailsrv.imap.commands import (
    Append,
    Authenticate,
    CancelUpdate,
    Capability,
    Check,
    Close,
    Command,
    Compress,
    Copy,
    Create,
    Delete,
    Enable,
    Expunge,
    Fetch,
    FetchItem,
    GenUrlauth,
    GetQuota,
    Id,
    Idle,
    InvalidCommand,
    ListCommand,
    Login,
    Logout,
    Namespace,
    Noop,
    Notify,
    Rename,
    ResetKey,
    Search,
    Select,
    SetQuota,
    Sort,
    StartTls,
    Status,
    StoreCommand,
    StoreLabels,
    Subscribe,
    Thread,
    UidExpunge,
    Unselect,
    Unsubscribe,
    UrlFetch,
    command_name,
)
from mailsrv.imap.framing import MAX_OTHER_LITERAL, NEED_DATA, CommandFramer, NeedData


class State(enum.Enum):
    """RFC 9051 §3 connection states."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class ReadMode(enum.Enum):
    """What the next input line is."""

    COMMAND = "command"
    SASL = "sasl"  # a response in an AUTHENTICATE exchange
    IDLE = "idle"  # the DONE that ends IDLE


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """One client line of an AUTHENTICATE exchange (base64, ``=`` or ``*``), line end removed."""

    line: bytes


@dataclass(frozen=True, slots=True)
class IdleEnd:
    """The line that ended IDLE; ``done`` is False when it was not ``DONE`` (RFC 2177)."""

    line: bytes

    @property
    def done(self) -> bool:
        return self.line.strip().upper() == b"DONE"


Event = Command | InvalidCommand | SaslResponse | IdleEnd | NeedData

_ANY: frozenset[type[Command]] = frozenset({Capability, Noop, Logout, Id})
_AUTHENTICATED = _ANY | {
    Enable,
    Select,
    Create,
    Delete,
    Rename,
    Subscribe,
    Unsubscribe,
    ListCommand,
    Namespace,
    Status,
    Append,
    GetQuota,
    SetQuota,
    GenUrlauth,
    ResetKey,
    UrlFetch,
    Idle,
    Compress,
    Notify,
}
#: The commands legal in each state (RFC 9051 §6.1-6.4; ENABLE only before SELECT, RFC 5161).
#: A command and its UID form are one class, legal in the same states.
LEGAL: Final[dict[State, frozenset[type[Command]]]] = {
    State.NOT_AUTHENTICATED: _ANY | {StartTls, Authenticate, Login},
    State.AUTHENTICATED: _AUTHENTICATED,
    State.SELECTED: (_AUTHENTICATED - {Enable})
    | {Check, Close, Unselect, Expunge, Search, Fetch, StoreCommand, StoreLabels, Copy}
    | {UidExpunge, Sort, Thread, CancelUpdate},
    State.LOGOUT: frozenset(),
}


class ImapCore:
    """One connection's IMAP framing, state and read mode (see the module docstring)."""

    def __init__(
        self,
        *,
        max_line: int,
        max_append: int,
        max_literal: int = MAX_OTHER_LITERAL,
        max_nonsync: int | None = None,
        memo: dict[bytes, tuple[FetchItem, ...]] | None = None,
    ) -> None:
        self._framer = CommandFramer(
            max_line=max_line,
            max_append=max_append,
            max_literal=max_literal,
            max_nonsync=max_nonsync,
            memo=memo,
        )
        self.state = State.NOT_AUTHENTICATED
        self.mode = ReadMode.COMMAND
        #: After the OK to STARTTLS: input is dropped until ``tls_established`` (RFC 9051 §6.2.1).
        self.tls_pending = False
        #: After the OK to COMPRESS: no event until ``compression_established`` (RFC 4978 §3).
        self.compression_pending = False
        #: COMPRESS DEFLATE is in effect (a second COMPRESS is refused).
        self.compressing = False
        #: The connection is to end once the output is flushed (LOGOUT, BYE).
        self.closed = False

    # -- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        # Plaintext pipelined after STARTTLS, before the handshake, must not be read as commands.
        if self.closed or self.tls_pending:
            return
        self._framer.receive_data(data)

    def data_to_send(self) -> bytes:
        """Continuation requests (``+ Ready for literal data``) to write before reading on."""
        return self._framer.data_to_send()

    @property
    def last_input(self) -> bytes:
        """The raw bytes of the last command returned (for transcripts)."""
        return self._framer.last_input

    @property
    def mid_command(self) -> bool:
        """A command has begun and is not complete yet (its literal is still coming, say)."""
        return self.mode is ReadMode.COMMAND and self._framer.mid_command

    def next_event(self) -> Event:
        """The next thing the session must act on, or ``NEED_DATA``."""
        if self.closed or self.tls_pending or self.compression_pending:
            return NEED_DATA
        if self.mode is not ReadMode.COMMAND:
            line = self._framer.next_line()
            if isinstance(line, NeedData):
                return line
            mode, self.mode = self.mode, ReadMode.COMMAND
            return SaslResponse(line) if mode is ReadMode.SASL else IdleEnd(line)
        cmd = self._framer.next_command()
        if isinstance(cmd, NeedData | InvalidCommand) or type(cmd) in LEGAL[self.state]:
            return cmd
        name = command_name(cmd)
        return InvalidCommand(cmd.tag, self._illegal_reason(cmd), name=name)

    def _illegal_reason(self, cmd: Command) -> str:
        name = command_name(cmd)
        kind = type(cmd)
        if self.state is State.NOT_AUTHENTICATED:
            return f"{name} needs authentication first"
        if kind in LEGAL[State.SELECTED] and kind not in LEGAL[State.AUTHENTICATED]:
            return f"{name} needs a selected mailbox"
        if kind is Enable:
            return "ENABLE is only allowed before SELECT"
        return f"{name} is not allowed now"

    # -- transitions (RFC 9051 §3) -----------------------------------------------------------

    def _move(self, allowed: tuple[State, ...], to: State) -> None:
        if self.state not in allowed:
            raise CoreMisuse(f"cannot go from {self.state.value} to {to.value}")
        self.state = to

    def logged_in(self) -> None:
        """LOGIN or AUTHENTICATE succeeded."""
        self._move((State.NOT_AUTHENTICATED,), State.AUTHENTICATED)

    def selected(self) -> None:
        """SELECT or EXAMINE opened a folder."""
        self._move((State.AUTHENTICATED, State.SELECTED), State.SELECTED)

    def unselected(self) -> None:
        """CLOSE, UNSELECT, or a SELECT that failed after closing the previous folder."""
        self._move((State.SELECTED,), State.AUTHENTICATED)

    def logged_out(self) -> None:
        """LOGOUT was answered: nothing more is read."""
        self.state = State.LOGOUT
        self.close()

    def close(self) -> None:
        """End the connection once the output is flushed (BYE): nothing more is read."""
        self.closed = True
        self.mode = ReadMode.COMMAND

    # -- read modes ---------------------------------------------------------------------------

    def expect_sasl(self) -> None:
        """The next line is a response to the continuation just sent (AUTHENTICATE)."""
        if self.state is not State.NOT_AUTHENTICATED:
            raise CoreMisuse("AUTHENTICATE exchanges happen before authentication")
        self.mode = ReadMode.SASL

    def start_idle(self) -> None:
        """IDLE was accepted: the next line is its DONE."""
        if self.state not in (State.AUTHENTICATED, State.SELECTED):
            raise CoreMisuse("IDLE needs an authenticated connection")
        self.mode = ReadMode.IDLE

    # -- STARTTLS ----------------------------------------------------------------------------

    def start_tls(self) -> None:
        """The OK to STARTTLS is written: drop what was pipelined after it, wait for TLS."""
        if self.state is not State.NOT_AUTHENTICATED:
            raise CoreMisuse("STARTTLS happens before authentication")
        self.tls_pending = True
        self._framer.discard_input()

    def tls_established(self) -> None:
        """The handshake is done: read commands again, over TLS."""
        if not self.tls_pending:
            raise CoreMisuse("no STARTTLS in progress")
        self.tls_pending = False

    # -- COMPRESS ------------------------------------------------------------------------------

    def start_compression(self) -> None:
        """The OK to COMPRESS is written: everything after it is compressed both ways; no
        event comes out until the adapter has put the compression layer in place."""
        if self.state not in (State.AUTHENTICATED, State.SELECTED) or self.compressing:
            raise CoreMisuse("COMPRESS happens once, after authentication")
        self.compression_pending = self.compressing = True

    def compression_established(self) -> bytes:
        """The layer is in place: read commands again. Returns the input received after the
        COMPRESS command (still compressed) for the adapter to inflate and feed back."""
        if not self.compression_pending:
            raise CoreMisuse("no COMPRESS in progress")
        self.compression_pending = False
        return self._framer.take_input()
