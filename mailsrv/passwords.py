"""Passwords in Dovecot's ``{SCHEME}value`` forms: check every scheme it makes, write ARGON2ID.

``check_password`` reads the scheme and its encoding (``{SHA256.HEX}``, ``{PLAIN.B64}``; no
scheme means PLAIN, Dovecot's default), decodes the value and asks the scheme
(``password_schemes.py``). An unknown scheme or a value its scheme cannot read raises
``PasswordSchemeError`` naming the scheme and why, never the value, after the same work as a
wrong password against a freshly written hash; an unknown user (``stored=None``) does that work
too and gets False. ``hash_password`` writes the schemes in ``WRITABLE``, ARGON2ID by default;
``{SCRYPT}`` (what earlier versions wrote) is still read but no longer written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import string
from typing import TYPE_CHECKING

from mailsrv.net.scram_keys import ITERATIONS, ScramKeys
from mailsrv.password_schemes import (
    BCRYPT_MAX,
    NOT_CHECKED,
    SCHEMES,
    MalformedHash,
    Scheme,
    utf8,
)
from mailsrv.sha_crypt import sha_crypt

if TYPE_CHECKING:
    from argon2 import PasswordHasher

DEFAULT_SCHEME = "ARGON2ID"
BCRYPT_COST = 10
_CRYPT_SALT = string.ascii_letters + string.digits + "./"
_dummy: dict[str, str] = {}


class PasswordSchemeError(ValueError):
    """A stored password this server cannot check: an unknown scheme or a malformed value."""

    def __init__(self, scheme: str, reason: str) -> None:
        super().__init__(f"password scheme {{{scheme}}} {reason}")
        self.scheme = scheme
        self.reason = reason


def _crypt_salt(length: int = 16) -> str:
    return "".join(_CRYPT_SALT[b % 64] for b in os.urandom(length))


def _argon2(variant: str) -> PasswordHasher:
    """Argon2 as Dovecot writes it (libsodium reads only one lane: parallelism 1); argon2-cffi
    is imported here, not at start-up (see ``password_schemes``)."""
    from argon2 import PasswordHasher, Type

    kind = Type.ID if variant == "id" else Type.I
    return PasswordHasher(
        time_cost=3, memory_cost=65536, parallelism=1, hash_len=32, salt_len=16, type=kind
    )


def _ssha512(password: str) -> str:
    salt = os.urandom(16)
    return base64.b64encode(hashlib.sha512(utf8(password) + salt).digest() + salt).decode()


WRITABLE = (
    "ARGON2ID",
    "ARGON2I",
    "BLF-CRYPT",
    "SHA512-CRYPT",
    "SHA256-CRYPT",
    "SSHA512",
    "SCRAM-SHA-256",
)
#: Schemes whose stored value is the password itself (SCRAM and APOP can use it).
CLEAR_SCHEMES = frozenset({"PLAIN", "CLEAR", "CLEARTEXT"})


def hash_password(password: str, scheme: str = DEFAULT_SCHEME) -> str:
    """``{SCHEME}value`` for ``password``, salted; ``scheme`` is one of ``WRITABLE``."""
    scheme = scheme.upper()
    if scheme == "ARGON2ID":
        value = _argon2("id").hash(password)
    elif scheme == "ARGON2I":
        value = _argon2("i").hash(password)
    elif scheme == "BLF-CRYPT":
        import bcrypt

        salt = bcrypt.gensalt(rounds=BCRYPT_COST)
        value = bcrypt.hashpw(utf8(password)[:BCRYPT_MAX], salt).decode()
    elif scheme in ("SHA512-CRYPT", "SHA256-CRYPT"):
        variant = "6" if scheme == "SHA512-CRYPT" else "5"
        value = sha_crypt(password, f"${variant}${_crypt_salt()}")
    elif scheme == "SSHA512":
        value = _ssha512(password)
    elif scheme == "SCRAM-SHA-256":
        # As doveadm pw writes it: 4096 iterations, a 16-byte salt (SCRAM logins can use it).
        value = ScramKeys.derive(utf8(password), os.urandom(16), ITERATIONS, "sha256").dovecot()
    else:
        raise ValueError(f"cannot write {{{scheme}}}; choose one of {', '.join(WRITABLE)}")
    return f"{{{scheme}}}{value}"


def split_scheme(stored: str) -> tuple[str, str, str]:
    """(scheme, encoding suffix or "", value) of a stored password; no scheme means PLAIN."""
    if not stored.startswith("{") or "}" not in stored:
        return "PLAIN", "", stored
    name, _, value = stored[1:].partition("}")
    scheme, _, suffix = name.upper().partition(".")
    return scheme, suffix, value


def _decode(scheme: Scheme, suffix: str, value: str) -> bytes:
    encoding = {"HEX": "hex", "B64": "base64", "BASE64": "base64"}.get(suffix, scheme.encoding)
    if suffix and suffix not in ("HEX", "B64", "BASE64"):
        raise MalformedHash(f"has an unknown encoding .{suffix}")
    if encoding == "none":
        return utf8(value)
    raw: bytes | None = None
    if encoding == "hex" or (scheme.size and len(value) == 2 * scheme.size):
        # Dovecot reads hex where base-64 is the default when the length says hex.
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except binascii.Error:
            reason = "is neither hex nor base-64" if encoding == "hex" else "is not base-64"
            raise MalformedHash(reason) from None
    if scheme.size and len(raw) != scheme.size:
        raise MalformedHash(f"holds {len(raw)} bytes where {scheme.size} are expected")
    return raw


def clear_secret(stored: str) -> bytes | None:
    """The password a ``{PLAIN}`` (``{CLEAR}``, ``.B64``, ``.HEX``, no scheme) value holds."""
    scheme, suffix, value = split_scheme(stored)
    if scheme not in CLEAR_SCHEMES:
        return None
    try:
        return _decode(SCHEMES[scheme], suffix, value)
    except MalformedHash:
        return None


def _same_work_as_a_wrong_password(password: str) -> None:
    if DEFAULT_SCHEME not in _dummy:
        _dummy[DEFAULT_SCHEME] = hash_password("unused dummy secret")
    _, _, value = split_scheme(_dummy[DEFAULT_SCHEME])
    SCHEMES[DEFAULT_SCHEME].check(password, value.encode(), "")


def check_password(password: str, stored: str | None, user: str = "") -> bool:
    """True when ``password`` matches ``stored``; False for a wrong one or an unknown user.

    Raises ``PasswordSchemeError`` when ``stored`` cannot be checked (unknown scheme, malformed
    value); that and an unknown user cost as much as a wrong password for a new user.
    """
    if stored is None:
        _same_work_as_a_wrong_password(password)
        return False
    scheme_name, suffix, value = split_scheme(stored)
    scheme = SCHEMES.get(scheme_name)
    try:
        if scheme is None:
            known = "is not checked by this server" if scheme_name in NOT_CHECKED else "is unknown"
            raise MalformedHash(known)
        return scheme.check(password, _decode(scheme, suffix, value), user)
    except MalformedHash as exc:
        _same_work_as_a_wrong_password(password)
        reason = str(exc) if scheme is None else f"value {exc}"
        raise PasswordSchemeError(scheme_name, reason) from None
    except UnicodeError:
        _same_work_as_a_wrong_password(password)
        return False


def verify_password(password: str, stored: str | None, user: str = "") -> bool:
    """``check_password`` that answers False instead of raising for an uncheckable value."""
    try:
        return check_password(password, stored, user)
    except PasswordSchemeError:
        return False
