"""The client side of SCRAM-SHA-256 (RFC 5802 §3), written from the RFC for the end-to-end tests:
it computes the proof from the password and checks the server's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class ScramClient:
    def __init__(self, user: str, password: str, authzid: str = "") -> None:
        self.user, self.password = user, password
        self.gs2 = f"n,{'a=' + authzid if authzid else ''},"
        self.bare = f"n={user},r={secrets.token_urlsafe(18)}"
        self.server_signature = b""
        self.verified = False

    def first(self) -> bytes:
        return (self.gs2 + self.bare).encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(a.split("=", 1) for a in server_first.decode().split(","))
        assert attrs["r"].startswith(self.bare.split("r=", 1)[1])
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
        )
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored = hashlib.sha256(client_key).digest()
        binding = base64.b64encode(self.gs2.encode()).decode()
        without = f"c={binding},r={attrs['r']}"
        message = f"{self.bare},{server_first.decode()},{without}".encode()
        proof = bytes(
            a ^ b for a, b in zip(client_key, hmac.digest(stored, message, "sha256"), strict=True)
        )
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_signature = hmac.digest(server_key, message, "sha256")
        return f"{without},p={base64.b64encode(proof).decode()}".encode()

    def check(self, server_final: bytes) -> bytes:
        """The server's ``v=``: it must prove it knows the keys too; the answer is empty."""
        expected = b"v=" + base64.b64encode(self.server_signature)
        self.verified = hmac.compare_digest(server_final, expected)
        assert self.verified, server_final
        return b""

    def imaplib(self) -> object:
        """An ``authobject`` for ``imaplib.IMAP4.authenticate``."""
        steps = iter((lambda _: self.first(), self.final, self.check))
        return lambda challenge: next(steps)(challenge)
