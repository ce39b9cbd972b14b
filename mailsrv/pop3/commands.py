"""POP3 commands as values (RFC 1939 §4-7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).

The parser turns one command line into one of these; a line it cannot make sense of becomes an
``InvalidCommand`` carrying the reason the client is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class User:
    """RFC 1939 §7 USER name."""

    VERB: ClassVar[str] = "USER"
    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """RFC 1939 §7 PASS string (spaces belong to the password)."""

    VERB: ClassVar[str] = "PASS"
    password: str


@dataclass(frozen=True, slots=True)
class Apop:
    """RFC 1939 §7 APOP name digest."""

    VERB: ClassVar[str] = "APOP"
    name: str
    digest: str


@dataclass(frozen=True, slots=True)
class Auth:
    """RFC 5034 AUTH [mechanism [initial-response]]; no mechanism lists them."""

    VERB: ClassVar[str] = "AUTH"
    mechanism: str | None = None
    initial: str | None = None


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """A client line answering a ``+`` continuation during AUTH (RFC 5034 §4)."""

    VERB: ClassVar[str] = "AUTH"
    data: str


@dataclass(frozen=True, slots=True)
class Capa:
    """RFC 2449 §5 CAPA."""

    VERB: ClassVar[str] = "CAPA"


@dataclass(frozen=True, slots=True)
class Stls:
    """RFC 2595 §4 STLS."""

    VERB: ClassVar[str] = "STLS"


@dataclass(frozen=True, slots=True)
class Quit:
    """RFC 1939 §4 / §6 QUIT."""

    VERB: ClassVar[str] = "QUIT"


@dataclass(frozen=True, slots=True)
class Stat:
    """RFC 1939 §5 STAT."""

    VERB: ClassVar[str] = "STAT"


@dataclass(frozen=True, slots=True)
class List:
    """RFC 1939 §5 LIST [msg]."""

    VERB: ClassVar[str] = "LIST"
    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Uidl:
    """RFC 1939 §7 UIDL [msg]."""

    VERB: ClassVar[str] = "UIDL"
    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RFC 1939 §5 RETR msg."""

    VERB: ClassVar[str] = "RETR"
    msg: int


@dataclass(frozen=True, slots=True)
class Top:
    """RFC 1939 §7 TOP msg n."""

    VERB: ClassVar[str] = "TOP"
    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Dele:
    """RFC 1939 §5 DELE msg."""

    VERB: ClassVar[str] = "DELE"
    msg: int


@dataclass(frozen=True, slots=True)
class Noop:
    """RFC 1939 §5 NOOP."""

    VERB: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Rset:
    """RFC 1939 §5 RSET."""

    VERB: ClassVar[str] = "RSET"


@dataclass(frozen=True, slots=True)
class InvalidCommand:
    """A line that is not a usable command; ``reason`` goes to the client after ``-ERR``."""

    reason: str
    verb: str | None = None


Command = (
    User
    | Pass
    | Apop
    | Auth
    | SaslResponse
    | Capa
    | Stls
    | Quit
    | Stat
    | List
    | Uidl
    | Retr
    | Top
    | Dele
    | Noop
    | Rset
)
