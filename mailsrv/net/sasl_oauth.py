"""OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's and Microsoft's form), the server side.

    OAUTHBEARER  n,a=alice@localhost,^Ahost=...^Aport=...^Aauth=Bearer <token>^A^A
    XOAUTH2      user=alice@localhost^Aauth=Bearer <token>^A^A

Either ends in ``Bearer(user, token)`` for the authenticator to check (OAUTHBEARER's user is its
authorization identity, "" when the client named none). A refused token gets ``refuse()``: the
JSON error challenge each mechanism defines (RFC 7628 §3.2.2), to which the client answers with
a dummy response (``^A`` or an empty line), and then ``SaslError(TOKEN_REFUSED)``. A message
that does not follow the grammar is ``MALFORMED``. No socket, clock or store.
"""

from __future__ import annotations

import json

from mailsrv.net.sasl_scram import decode_saslname
from mailsrv.net.sasl_steps import (
    Bearer,
    Challenge,
    CredentialsOnly,
    Failure,
    SaslError,
    Step,
    utf8,
)

_MALFORMED = SaslError(Failure.MALFORMED)
_KVSEP = "\x01"


def bearer_token(value: str) -> str | None:
    """The token of an ``auth=`` value ``Bearer <token>`` (scheme in any case, RFC 6750 §2.1)."""
    scheme, _, token = value.partition(" ")
    token = token.strip(" ")
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        return None
    return token


def _pairs(text: str) -> dict[str, str] | None:
    """``key=value^A...^A^A`` (the text after the first separator) as a dict, or None."""
    if not text.endswith(_KVSEP * 2):
        return None
    out: dict[str, str] = {}
    for item in text[:-2].split(_KVSEP):
        key, eq, value = item.partition("=")
        if not eq or not key.isascii() or not key.isalpha():
            return None
        out[key] = value
    return out


class _Bearer(CredentialsOnly):
    error: bytes = b""

    def __init__(self) -> None:
        self._refused = False
        self._done = False

    def begin(self, initial: bytes | None) -> Step:
        return Challenge(b"") if initial is None else self.receive(initial)

    def receive(self, message: bytes) -> Step:
        if self._refused or self._done:
            return SaslError(Failure.TOKEN_REFUSED)
        text = utf8(message)
        if isinstance(text, SaslError):
            return text
        self._done = True
        return self.parse(text)

    def parse(self, text: str) -> Step:
        raise NotImplementedError

    def refuse(self) -> Step:
        self._refused = True
        return Challenge(self.error)


class OAuthBearer(_Bearer):
    """RFC 7628 §3.1: a GS2 header, then key/value pairs, ``auth`` among them."""

    error = json.dumps({"status": "invalid_token", "schemes": "bearer", "scope": "mail"}).encode()

    def parse(self, text: str) -> Step:
        parts = text.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y") or not parts[2].startswith(_KVSEP):
            return _MALFORMED  # "p=...": channel binding is not offered
        authz = parts[1]
        user: str | None = ""
        if authz:
            user = decode_saslname(authz[2:]) if authz.startswith("a=") else None
        pairs = _pairs(parts[2][1:])
        token = bearer_token(pairs.get("auth", "")) if pairs is not None else None
        if user is None or token is None:
            return _MALFORMED
        return Bearer(user, token)


class XOAuth2(_Bearer):
    """``user=<address>^Aauth=Bearer <token>^A^A``."""

    error = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"}).encode()

    def parse(self, text: str) -> Step:
        pairs = _pairs(text)
        if pairs is None:
            return _MALFORMED
        user, token = pairs.get("user", ""), bearer_token(pairs.get("auth", ""))
        if not user or token is None:
            return _MALFORMED
        return Bearer(user, token)
