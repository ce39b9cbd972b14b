"""SCRAM-SHA-256 (RFC 7677, RFC 5802), the server side, without channel binding (no -PLUS).

    client-first   n,,n=user,r=<client nonce>            -> NeedSecret("user")
    provide(keys)                                        -> Challenge(r=<nonce>,s=<salt>,i=4096)
    client-final   c=biws,r=<nonce>,p=<proof>            -> Challenge(v=<server signature>)
    (empty)                                              -> Proven("user")

A wrong proof is ``SaslError(REJECTED)``; a message that does not follow the grammar (RFC 5802
§7), a channel-binding request (``p=``), a mandatory extension (``m=``) or a nonce that changed is
``MALFORMED``; an authorization identity other than the user is ``AUTHZID``. The server nonce
comes from ``secrets`` unless a test gives one. No socket, clock or store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable

from mailsrv.net.sasl_steps import (
    Challenge,
    CredentialsOnly,
    Failure,
    NeedSecret,
    Proven,
    SaslError,
    Step,
    utf8,
)
from mailsrv.net.scram_keys import ScramKeys

_MALFORMED = SaslError(Failure.MALFORMED)


def decode_saslname(text: str) -> str | None:
    """``=2C`` is ``,`` and ``=3D`` is ``=`` (RFC 5802 §5.1); any other ``=`` is an error."""
    out, i = [], 0
    while i < len(text):
        if text[i] == ",":
            return None
        if text[i] == "=":
            code = text[i : i + 3]
            if code not in ("=2C", "=3D"):
                return None
            out.append("," if code == "=2C" else "=")
            i += 3
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _printable_nonce(text: str) -> bool:
    return bool(text) and all(0x21 <= ord(c) <= 0x7E and c != "," for c in text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Scram(CredentialsOnly):
    """One SCRAM exchange; ``hash_name`` is hashlib's name ("sha256" for SCRAM-SHA-256)."""

    def __init__(self, hash_name: str = "sha256", nonce: Callable[[], str] | None = None) -> None:
        self._hash = hash_name
        self._make_nonce = nonce or (lambda: secrets.token_urlsafe(24))
        self._state = "first"
        self._user = ""
        self._gs2 = ""
        self._bare = ""
        self._client_nonce = ""
        self._nonce = ""
        self._server_first = ""
        self._keys: ScramKeys | None = None

    def begin(self, initial: bytes | None) -> Step:
        return Challenge(b"") if initial is None else self.receive(initial)

    def receive(self, message: bytes) -> Step:
        text = utf8(message)
        if isinstance(text, SaslError):
            return text
        if self._state == "first":
            return self._client_first(text)
        if self._state == "final":
            return self._client_final(text)
        if self._state == "verified" and text == "":
            self._state = "done"
            return Proven(self._user)
        return _MALFORMED

    def _client_first(self, text: str) -> Step:
        parts = text.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y"):
            return _MALFORMED  # "p=..." asks for channel binding, which is not offered
        flag, authz, bare = parts
        attrs = bare.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            return _MALFORMED  # also a mandatory extension "m=" first
        user = decode_saslname(attrs[0][2:])
        nonce = attrs[1][2:]
        if not user or not _printable_nonce(nonce):
            return _MALFORMED
        if authz:
            authzid = decode_saslname(authz[2:]) if authz.startswith("a=") else None
            if authzid is None:
                return _MALFORMED
            if authzid != user:
                return SaslError(Failure.AUTHZID)
        self._gs2 = f"{flag},{authz},"
        self._bare, self._user, self._client_nonce = bare, user, nonce
        self._state = "keys"
        return NeedSecret(user)

    def provide(self, keys: ScramKeys) -> Step:
        if self._state != "keys":
            return super().provide(keys)
        server_nonce = self._make_nonce()
        if not _printable_nonce(server_nonce):
            raise ValueError("a server nonce is printable ASCII without commas")
        self._keys = keys
        self._nonce = self._client_nonce + server_nonce
        self._server_first = f"r={self._nonce},s={_b64(keys.salt)},i={keys.iterations}"
        self._state = "final"
        return Challenge(self._server_first.encode())

    def _client_final(self, text: str) -> Step:
        without_proof, sep, proof_text = text.rpartition(",p=")
        attrs = without_proof.split(",")
        if not sep or len(attrs) < 2 or not attrs[0].startswith("c=") or attrs[1][:2] != "r=":
            return _MALFORMED
        try:
            binding = base64.b64decode(attrs[0][2:], validate=True)
            proof = base64.b64decode(proof_text, validate=True)
        except (binascii.Error, ValueError):
            return _MALFORMED
        if binding != self._gs2.encode() or attrs[1][2:] != self._nonce:
            return _MALFORMED
        keys = self._keys
        if keys is None or len(proof) != hashlib.new(self._hash).digest_size:
            return _MALFORMED
        auth_message = f"{self._bare},{self._server_first},{without_proof}".encode()
        signature = hmac.digest(keys.stored_key, auth_message, self._hash)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), keys.stored_key):
            self._state = "failed"
            return SaslError(Failure.REJECTED)
        self._state = "verified"
        server_signature = hmac.digest(keys.server_key, auth_message, self._hash)
        return Challenge(b"v=" + base64.b64encode(server_signature))


class ScramSha256(Scram):
    def __init__(self, nonce: Callable[[], str] | None = None) -> None:
        super().__init__("sha256", nonce)
