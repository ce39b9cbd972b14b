"""SCRAM keys (RFC 5802 §3): what a server stores to check a SCRAM login without the password.

    keys = ScramKeys.derive(b"pencil", salt, 4096, "sha256")
    keys.dovecot()                    # "4096,<salt>,<StoredKey>,<ServerKey>" (base-64 parts)
    ScramKeys.parse(value, "sha256")  # a stored {SCRAM-SHA-256} value, as doveadm pw writes it

Passwords are used as their UTF-8 bytes, as Dovecot does (no SASLprep). Pure hashlib and hmac.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

#: RFC 7677 §4: at least 4096 iterations; what doveadm pw writes.
ITERATIONS = 4096
#: Highest iteration count read from a stored value (a bigger one is a mistake or an attack).
MAX_ITERATIONS = 10_000_000


class BadScramValue(ValueError):
    """A stored value that is not ``iterations,salt,StoredKey,ServerKey``; says why, not what."""


@dataclass(frozen=True, slots=True)
class ScramKeys:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, password: bytes, salt: bytes, iterations: int, hash_name: str) -> ScramKeys:
        salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", hash_name)
        return cls(
            iterations,
            salt,
            hashlib.new(hash_name, client_key).digest(),
            hmac.digest(salted, b"Server Key", hash_name),
        )

    @classmethod
    def parse(cls, value: str, hash_name: str) -> ScramKeys:
        parts = value.split(",")
        if len(parts) != 4 or not parts[0].isascii() or not parts[0].isdigit():
            raise BadScramValue("is not iterations,salt,StoredKey,ServerKey")
        iterations = int(parts[0])
        if not 0 < iterations <= MAX_ITERATIONS:
            raise BadScramValue("has an impossible iteration count")
        try:
            salt, stored, server = (base64.b64decode(p, validate=True) for p in parts[1:])
        except (binascii.Error, ValueError):
            raise BadScramValue("has a part that is not base-64") from None
        size = hashlib.new(hash_name).digest_size
        if not salt or len(stored) != size or len(server) != size:
            raise BadScramValue(f"has keys that are not {size} bytes")
        return cls(iterations, salt, stored, server)

    def dovecot(self) -> str:
        b64 = base64.b64encode
        parts = (b64(self.salt), b64(self.stored_key), b64(self.server_key))
        return ",".join([str(self.iterations), *(p.decode("ascii") for p in parts)])
