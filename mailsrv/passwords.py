"""Password hashing in Dovecot's ``{SCHEME}`` forms: SCRYPT (ours), PLAIN and SHA512-CRYPT read.

``{SCRYPT}`` is ``$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>``; verification is
constant-time. A check against ``None`` (unknown user) does the same work and returns False.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCRYPT_LOG_N = 14  # N = 16384: about 50 ms here, the usual interactive-login cost
SCRYPT_R = 8
SCRYPT_P = 1
_DUMMY = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=1 << SCRYPT_LOG_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    params = f"ln={SCRYPT_LOG_N},r={SCRYPT_R},p={SCRYPT_P}"
    return f"{{SCRYPT}}$scrypt${params}${_b64(salt)}${_b64(digest)}"


def _verify_scrypt(password: str, encoded: str) -> bool:
    try:
        _, _, params, salt, digest = encoded.split("$")
        kv = dict(item.split("=") for item in params.split(","))
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=1 << int(kv["ln"]),
            r=int(kv["r"]),
            p=int(kv["p"]),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(got, expected)


def verify_password(password: str, stored: str | None) -> bool:
    global _DUMMY
    if stored is None:
        if _DUMMY is None:
            _DUMMY = hash_password("unused dummy secret")
        _verify_scrypt(password, _DUMMY[len("{SCRYPT}") :])
        return False
    if not stored.startswith("{"):
        stored = "{PLAIN}" + stored
    scheme, _, value = stored[1:].partition("}")
    scheme = scheme.upper()
    if scheme == "SCRYPT":
        return _verify_scrypt(password, value)
    if scheme in ("PLAIN", "CLEARTEXT"):
        return hmac.compare_digest(value.encode(), password.encode())
    if scheme in ("SHA512-CRYPT", "SHA256-CRYPT", "CRYPT"):
        from mailsrv.sha_crypt import sha_crypt_verify

        return sha_crypt_verify(password, value)
    return False
