"""How each Dovecot password scheme checks a plaintext against its stored (decoded) value.

Every scheme is a ``Scheme``: a check taking the plaintext, the stored value's bytes (already
decoded from hex or base-64) and the user name (only DIGEST-MD5 needs it), the encoding the
stored value has unless its name says ``.HEX`` or ``.B64``, and the size of the decoded value
when the scheme fixes one. A check raises ``MalformedHash`` for a value it cannot read; the
reason it gives never quotes the value. Argon2 is argon2-cffi's, bcrypt is pyca's bcrypt, both
imported at the first check that needs them (argon2-cffi takes ~10 ms to import, a start-up
that only ever checks {PLAIN} need not pay it); the crypt family (``$1$``, ``$5$``, ``$6$``) is
``md5_crypt.py`` and ``sha_crypt.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mailsrv.cram_md5 import cram_md5_context
from mailsrv.md5_crypt import md5_crypt
from mailsrv.sha_crypt import sha_crypt

Encoding = Literal["none", "hex", "base64"]
Check = Callable[[str, bytes, str], bool]
#: bcrypt reads at most this many bytes of a password (Dovecot's crypt cuts there too).
BCRYPT_MAX = 72


class MalformedHash(ValueError):
    """A stored value its scheme cannot read; the message says why, without the value."""


@dataclass(frozen=True, slots=True)
class Scheme:
    check: Check
    encoding: Encoding = "none"
    size: int = 0


def utf8(password: str) -> bytes:
    return password.encode("utf-8", "surrogateescape")


def _ascii(raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedHash("is not ASCII text") from None


def _plain(password: str, raw: bytes, user: str) -> bool:
    return hmac.compare_digest(utf8(password), raw)


def _digest(name: str) -> Check:
    def check(password: str, raw: bytes, user: str) -> bool:
        return hmac.compare_digest(hashlib.new(name, utf8(password)).digest(), raw)

    return check


def _salted(name: str) -> Check:
    size = hashlib.new(name).digest_size

    def check(password: str, raw: bytes, user: str) -> bool:
        if len(raw) <= size:
            raise MalformedHash("is too short to hold a salt")
        digest, salt = raw[:size], raw[size:]
        return hmac.compare_digest(hashlib.new(name, utf8(password) + salt).digest(), digest)

    return check


def _crypt(password: str, raw: bytes, user: str) -> bool:
    """Dovecot's crypt schemes accept every form its crypt() knows; we read $1$, $2?$, $5$, $6$."""
    text = _ascii(raw)
    if text.startswith(("$2a$", "$2b$", "$2x$", "$2y$")):
        import bcrypt

        try:
            return bcrypt.checkpw(utf8(password)[:BCRYPT_MAX], text.encode())
        except ValueError:
            raise MalformedHash("is not a valid bcrypt hash") from None
    if not text.startswith(("$1$", "$5$", "$6$")):
        raise MalformedHash("is not a crypt form this server reads ($1$, $2y$, $5$, $6$)")
    if text.count("$") < 3 or not text.rsplit("$", 1)[1]:
        raise MalformedHash("has no digest")
    try:
        expected = md5_crypt(password, text) if text[1] == "1" else sha_crypt(password, text)
    except (ValueError, UnicodeError):
        raise MalformedHash("is not a valid crypt hash") from None
    return hmac.compare_digest(expected.encode(), raw)


def _argon2(variant: Literal["id", "i"]) -> Check:
    prefix = f"$argon2{variant}$"

    def check(password: str, raw: bytes, user: str) -> bool:
        from argon2 import Type
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
        from argon2.low_level import verify_secret

        if not _ascii(raw).startswith(prefix):
            raise MalformedHash(f"does not start with {prefix}")
        try:
            return verify_secret(raw, utf8(password), Type.ID if variant == "id" else Type.I)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            raise MalformedHash("is not a valid Argon2 hash") from None

    return check


def _pbkdf2(password: str, raw: bytes, user: str) -> bool:
    """``$1$salt$rounds$hex``: PBKDF2-HMAC-SHA1, 20 bytes."""
    parts = _ascii(raw).split("$")
    if len(parts) != 5 or parts[:2] != ["", "1"] or not parts[3].isdigit():
        raise MalformedHash("is not $1$salt$rounds$digest")
    try:
        expected = bytes.fromhex(parts[4])
    except ValueError:
        raise MalformedHash("has a digest that is not hex") from None
    rounds = int(parts[3])
    if not 0 < rounds <= 10_000_000 or not expected:
        raise MalformedHash("has impossible rounds or an empty digest")
    got = hashlib.pbkdf2_hmac("sha1", utf8(password), parts[2].encode(), rounds, len(expected))
    return hmac.compare_digest(got, expected)


def _scram(name: str) -> Check:
    def check(password: str, raw: bytes, user: str) -> bool:
        """``rounds,salt,StoredKey,ServerKey`` (base-64), RFC 5802's stored form."""
        parts = _ascii(raw).split(",")
        if len(parts) != 4 or not parts[0].isdigit() or not 0 < int(parts[0]) <= 10_000_000:
            raise MalformedHash("is not rounds,salt,StoredKey,ServerKey")
        try:
            salt, stored_key, server_key = (base64.b64decode(p, validate=True) for p in parts[1:])
        except binascii.Error:
            raise MalformedHash("has a part that is not base-64") from None
        salted = hashlib.pbkdf2_hmac(name, utf8(password), salt, int(parts[0]))
        client_key = hmac.digest(salted, b"Client Key", name)
        ok_stored = hmac.compare_digest(hashlib.new(name, client_key).digest(), stored_key)
        ok_server = hmac.compare_digest(hmac.digest(salted, b"Server Key", name), server_key)
        return ok_stored and ok_server

    return check


def _cram_md5(password: str, raw: bytes, user: str) -> bool:
    return hmac.compare_digest(cram_md5_context(utf8(password)), raw)


def _digest_md5(password: str, raw: bytes, user: str) -> bool:
    """MD5 of ``user:realm:password``, the realm being what follows ``@`` in the user name."""
    local, _, realm = user.partition("@")
    digest = hashlib.md5(f"{local}:{realm}:".encode() + utf8(password)).digest()  # noqa: S324 - a legacy scheme read
    return hmac.compare_digest(digest, raw)


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, raw: bytes, user: str) -> bool:
    """Our own ``$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>``, written by earlier versions."""
    try:
        _, name, params, salt, digest = _ascii(raw).split("$")
        kv = dict(item.split("=") for item in params.split(","))
        expected = _unb64(digest)
        if name != "scrypt" or not expected:
            raise ValueError("not scrypt")
        got = hashlib.scrypt(
            utf8(password),
            salt=_unb64(salt),
            n=1 << int(kv["ln"]),
            r=int(kv["r"]),
            p=int(kv["p"]),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, KeyError, binascii.Error):
        raise MalformedHash("is not $scrypt$ln=N,r=R,p=P$salt$hash") from None
    return hmac.compare_digest(got, expected)


SCHEMES: dict[str, Scheme] = {
    "PLAIN": Scheme(_plain),
    "CLEAR": Scheme(_plain),
    "CLEARTEXT": Scheme(_plain),
    "CRYPT": Scheme(_crypt),
    "MD5": Scheme(_crypt),
    "MD5-CRYPT": Scheme(_crypt),
    "SHA256-CRYPT": Scheme(_crypt),
    "SHA512-CRYPT": Scheme(_crypt),
    "BLF-CRYPT": Scheme(_crypt),
    "ARGON2I": Scheme(_argon2("i")),
    "ARGON2ID": Scheme(_argon2("id")),
    "PBKDF2": Scheme(_pbkdf2),
    "SCRAM-SHA-1": Scheme(_scram("sha1")),
    "SCRAM-SHA-256": Scheme(_scram("sha256")),
    "SHA": Scheme(_digest("sha1"), "base64", 20),
    "SHA1": Scheme(_digest("sha1"), "base64", 20),
    "SHA256": Scheme(_digest("sha256"), "base64", 32),
    "SHA512": Scheme(_digest("sha512"), "base64", 64),
    "LDAP-MD5": Scheme(_digest("md5"), "base64", 16),
    "PLAIN-MD5": Scheme(_digest("md5"), "hex", 16),
    "SSHA": Scheme(_salted("sha1"), "base64"),
    "SSHA256": Scheme(_salted("sha256"), "base64"),
    "SSHA512": Scheme(_salted("sha512"), "base64"),
    "SMD5": Scheme(_salted("md5"), "base64"),
    "CRAM-MD5": Scheme(_cram_md5, "hex", 32),
    "HMAC-MD5": Scheme(_cram_md5, "hex", 32),
    "DIGEST-MD5": Scheme(_digest_md5, "hex", 16),
    "SCRYPT": Scheme(_scrypt),
}

#: Dovecot schemes this server knows of but does not check (no library, or no plaintext check).
NOT_CHECKED = frozenset({"DES-CRYPT", "PLAIN-MD4", "PLAIN-TRUNC", "OTP", "SKEY", "RPA", "LANMAN"})
