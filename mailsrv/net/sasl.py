"""Sans-I/O SASL server exchanges, shared by POP3 AUTH (RFC 5034), IMAP AUTHENTICATE
(RFC 9051 §6.2.2) and SMTP AUTH (RFC 4954).

    exchange = start("LOGIN")                  # None: not a mechanism mailsrv offers
    step = exchange.begin(initial)             # initial response (SASL-IR), decoded, or None
    while isinstance(step, Challenge):
        ...send step.base64, read the client's line...
        step = exchange.line(line)             # or exchange.receive(bytes already decoded)
    # step is Credentials (check them) or SaslError (render it)

Decoding is strict on every protocol: a response that is not base64 (RFC 4648 §4, no stray
characters) or credentials that are not UTF-8 end the exchange with a ``SaslError`` that each
protocol renders in its own words (``-ERR``, ``BAD``, ``501 5.5.2``); ``*`` cancels. ``=`` is an
empty response. Mechanisms are looked up by name in ``MECHANISMS``; a new one is a class with
``begin`` and ``receive``. Nothing here reads a socket, a clock or the store.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol


class Failure(enum.Enum):
    """Why an exchange ended without credentials."""

    CANCELLED = "cancelled"  # the client sent "*"
    BAD_BASE64 = "bad base64"  # a response that is not strict base64
    BAD_UTF8 = "bad utf-8"  # decoded credentials that are not UTF-8
    MALFORMED = "malformed"  # PLAIN without exactly two NULs (RFC 4616 §2)
    AUTHZID = "authzid"  # PLAIN asking to act as another user, which mailsrv never allows


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` to the client (base64-encoded) and feed its answer back."""

    data: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client claims; the protocol checks them (an empty ``user`` never logs in)."""

    user: str
    password: str


@dataclass(frozen=True, slots=True)
class SaslError:
    failure: Failure


Step = Challenge | Credentials | SaslError


def decode_response(line: bytes | str) -> bytes | SaslError:
    """One client response line: ``*`` cancels, ``=`` is empty, otherwise strict base64."""
    if isinstance(line, str):
        try:
            line = line.encode("ascii")
        except UnicodeEncodeError:
            return SaslError(Failure.BAD_BASE64)
    line = line.strip(b" \t\r\n")
    if line == b"*":
        return SaslError(Failure.CANCELLED)
    if line == b"=":
        return b""
    try:
        return binascii.a2b_base64(line, strict_mode=True)
    except (binascii.Error, ValueError):
        return SaslError(Failure.BAD_BASE64)


def decode_text(line: bytes | str) -> str | SaslError:
    """``decode_response`` then strict UTF-8 (RFC 4616 §2, RFC 9051 §6.2.2)."""
    raw = decode_response(line)
    if isinstance(raw, SaslError):
        return raw
    return utf8(raw)


def utf8(raw: bytes) -> str | SaslError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return SaslError(Failure.BAD_UTF8)


class Mechanism(Protocol):
    """One mechanism's server side: the first step, then one step per client message."""

    def begin(self, initial: bytes | None) -> Step: ...

    def receive(self, message: bytes) -> Step: ...


class Plain:
    """RFC 4616: one message ``authzid NUL authcid NUL passwd``."""

    def begin(self, initial: bytes | None) -> Step:
        return Challenge(b"") if initial is None else self.receive(initial)

    def receive(self, message: bytes) -> Step:
        text = utf8(message)
        if isinstance(text, SaslError):
            return text
        parts = text.split("\0")
        if len(parts) != 3:
            return SaslError(Failure.MALFORMED)
        authzid, user, password = parts
        if authzid and authzid != user:
            return SaslError(Failure.AUTHZID)
        return Credentials(user, password)


class Login:
    """The LOGIN mechanism (draft-murchison-sasl-login): user name, then password."""

    def __init__(self) -> None:
        self._user: str | None = None

    def begin(self, initial: bytes | None) -> Step:
        return Challenge(b"Username:") if initial is None else self.receive(initial)

    def receive(self, message: bytes) -> Step:
        text = utf8(message)
        if isinstance(text, SaslError):
            return text
        if self._user is None:
            self._user = text
            return Challenge(b"Password:")
        return Credentials(self._user, text)


#: The mechanisms mailsrv offers, by name, in the order they are advertised.
MECHANISMS: Mapping[str, Callable[[], Mechanism]] = MappingProxyType(
    {"PLAIN": Plain, "LOGIN": Login}
)


class Exchange:
    """One AUTH exchange in progress: ``begin`` once, then ``line``/``receive`` per response."""

    __slots__ = ("_mechanism", "mechanism")

    def __init__(self, name: str, mechanism: Mechanism) -> None:
        self.mechanism = name
        self._mechanism = mechanism

    def begin(self, initial: bytes | None) -> Step:
        return self._mechanism.begin(initial)

    def begin_line(self, initial: bytes | str | None) -> Step:
        """``begin`` with an initial response still in base64 (as sent with AUTH)."""
        if initial is None:
            return self.begin(None)
        raw = decode_response(initial)
        return raw if isinstance(raw, SaslError) else self.begin(raw)

    def receive(self, message: bytes) -> Step:
        return self._mechanism.receive(message)

    def line(self, line: bytes | str) -> Step:
        """A client response line as sent: decoded here, then given to the mechanism."""
        raw = decode_response(line)
        return raw if isinstance(raw, SaslError) else self.receive(raw)


def start(name: str) -> Exchange | None:
    """A new exchange for mechanism ``name`` (upper case), or None if it is not offered."""
    make = MECHANISMS.get(name)
    return None if make is None else Exchange(name, make())
