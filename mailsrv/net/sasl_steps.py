"""The values a SASL exchange hands its protocol (``mailsrv.net.sasl``), and strict decoding.

A step is what the protocol does next: send a ``Challenge``; check ``Credentials`` (a user name
and password); look up SCRAM keys (``NeedSecret``); check a bearer token (``Bearer``); log in a
user whose proof the mechanism checked (``Proven``); or render a ``SaslError``. Sans-I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mailsrv.errors import CoreMisuse

if TYPE_CHECKING:
    from mailsrv.net.scram_keys import ScramKeys


class Failure(enum.Enum):
    """Why an exchange ended without credentials."""

    CANCELLED = "cancelled"  # the client sent "*"
    BAD_BASE64 = "bad base64"  # a response that is not strict base64
    BAD_UTF8 = "bad utf-8"  # decoded credentials that are not UTF-8
    MALFORMED = "malformed"  # PLAIN without exactly two NULs (RFC 4616 §2)
    AUTHZID = "authzid"  # asking to act as another user, which mailsrv never allows
    REJECTED = "rejected"  # a wrong SCRAM proof: a failed login (the authenticator counts it)
    # The end of a refused bearer token's exchange (the authenticator counted it at the refusal).
    TOKEN_REFUSED = "token refused"  # noqa: S105 - a reason, not a secret


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


@dataclass(frozen=True, slots=True)
class NeedSecret:
    """SCRAM: look up ``user``'s keys and give them to ``Exchange.provide`` (made-up keys for a
    user without them, so the exchange fails at the proof like a wrong password)."""

    user: str


@dataclass(frozen=True, slots=True)
class Bearer:
    """OAUTHBEARER / XOAUTH2: check ``token`` for ``user`` ("" when the client named nobody);
    on success log in, else ``Exchange.refuse`` gives the error challenge to send."""

    user: str
    token: str


@dataclass(frozen=True, slots=True)
class Proven:
    """The mechanism verified the client's proof itself (SCRAM): log ``user`` in."""

    user: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """What the authenticator answers once it accepted a user (``Authenticator.resolve``)."""

    user: str


Step = Challenge | Credentials | SaslError | NeedSecret | Bearer | Proven


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
    """One mechanism's server side: the first step, then one step per client message;
    ``provide`` answers ``NeedSecret`` and ``refuse`` a ``Bearer`` whose token was wrong."""

    def begin(self, initial: bytes | None) -> Step: ...

    def receive(self, message: bytes) -> Step: ...

    def provide(self, keys: ScramKeys) -> Step: ...

    def refuse(self) -> Step: ...


class CredentialsOnly:
    """The base of mechanisms that end in ``Credentials``: they never ask for keys or a token."""

    def provide(self, keys: ScramKeys) -> Step:
        raise CoreMisuse(f"{type(self).__name__} asks for no SCRAM keys")

    def refuse(self) -> Step:
        raise CoreMisuse(f"{type(self).__name__} checks no bearer token")
