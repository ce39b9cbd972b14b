"""Sans-I/O SASL server exchanges, shared by POP3 AUTH (RFC 5034), IMAP AUTHENTICATE
(RFC 9051 §6.2.2) and SMTP AUTH (RFC 4954).

    exchange = start("LOGIN")                  # None: not a mechanism mailsrv offers
    step = exchange.begin(initial)             # initial response (SASL-IR), decoded, or None
    while isinstance(step, Challenge):
        ...send step.base64, read the client's line...
        step = exchange.line(line)             # or exchange.receive(bytes already decoded)
    # step is Credentials (check them) or SaslError (render it)

SCRAM-SHA-256 (``sasl_scram.py``) asks for the user's keys mid-way (``NeedSecret``, answered with
``exchange.provide(keys)``) and ends in ``Proven``; OAUTHBEARER and XOAUTH2 (``sasl_oauth.py``) end
in ``Bearer`` (a token to check; ``exchange.refuse()`` when it is wrong). ``Authenticator.resolve``
turns those steps into the next ``Challenge``, a ``LoggedIn`` or a ``SaslError``.

Decoding is strict on every protocol: a response that is not base64 (RFC 4648 §4, no stray
characters) or credentials that are not UTF-8 end the exchange with a ``SaslError`` that each
protocol renders in its own words (``-ERR``, ``BAD``, ``501 5.5.2``); ``*`` cancels. ``=`` is an
empty response. Mechanisms are looked up by name in ``MECHANISMS``; a new one is a class with
``begin``, ``receive``, ``provide`` and ``refuse`` (``CredentialsOnly`` gives the last two).
Nothing here reads a socket, a clock or the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from mailsrv.net.sasl_oauth import OAuthBearer, XOAuth2
from mailsrv.net.sasl_scram import ScramSha256
from mailsrv.net.sasl_steps import (
    Bearer,
    Challenge,
    Credentials,
    CredentialsOnly,
    Failure,
    LoggedIn,
    Mechanism,
    NeedSecret,
    Proven,
    SaslError,
    Step,
    decode_response,
    decode_text,
    utf8,
)
from mailsrv.net.scram_keys import ScramKeys

__all__ = [
    "MECHANISMS",
    "Bearer",
    "Challenge",
    "Credentials",
    "Exchange",
    "Failure",
    "LoggedIn",
    "Login",
    "Mechanism",
    "NeedSecret",
    "Plain",
    "Proven",
    "SaslError",
    "ScramKeys",
    "Step",
    "decode_response",
    "decode_text",
    "start",
    "utf8",
]


class Plain(CredentialsOnly):
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


class Login(CredentialsOnly):
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


#: The mechanisms mailsrv knows, by name, in the order they are advertised (each protocol offers
#: those that can work now: ``Authenticator.mechanisms``).
MECHANISMS: Mapping[str, Callable[[], Mechanism]] = MappingProxyType(
    {
        "PLAIN": Plain,
        "LOGIN": Login,
        "SCRAM-SHA-256": ScramSha256,
        "OAUTHBEARER": OAuthBearer,
        "XOAUTH2": XOAuth2,
    }
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

    def provide(self, keys: ScramKeys) -> Step:
        """The SCRAM keys a ``NeedSecret`` asked for (made-up ones for a user without them)."""
        return self._mechanism.provide(keys)

    def refuse(self) -> Step:
        """The token of a ``Bearer`` was wrong: the error challenge the mechanism sends."""
        return self._mechanism.refuse()


def start(name: str) -> Exchange | None:
    """A new exchange for mechanism ``name`` (upper case), or None if it is not offered."""
    make = MECHANISMS.get(name)
    return None if make is None else Exchange(name, make())
