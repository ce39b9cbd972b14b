"""MD5-crypt (``$1$``), the hashes of Dovecot's ``{MD5-CRYPT}`` (also ``{MD5}`` and ``{CRYPT}``).

Poul-Henning Kamp's FreeBSD algorithm, written with ``hashlib`` for the same reason as
``sha_crypt.py``: no maintained library covers it. A hash reads ``$1$salt$digest``: the salt is
at most 8 characters, there are always 1000 rounds, and the digest is crypt's base-64.
"""

from __future__ import annotations

import hashlib
import hmac

from mailsrv.sha_crypt import crypt_b64encode

SALT_MAX = 8
ROUNDS = 1000
_ORDER: tuple[tuple[int, ...], ...] = (
    (0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5), (11,),
)  # fmt: skip


def md5_crypt(password: str, setting: str) -> str:
    """Hash ``password`` with the salt of the ``$1$`` ``setting`` (which may be a whole hash).

    Raises ``ValueError`` for anything that is not an MD5-crypt setting.
    """
    if not setting.startswith("$1$"):
        raise ValueError("not an MD5-crypt hash")
    salt = setting[3:].split("$", 1)[0][:SALT_MAX]
    key, salt_bytes = password.encode(), salt.encode()
    alternate = hashlib.md5(key + salt_bytes + key).digest()  # noqa: S324 - a legacy scheme read
    ctx = hashlib.md5(key + b"$1$" + salt_bytes)  # noqa: S324 - a legacy scheme read
    for start in range(0, len(key), 16):
        ctx.update(alternate[: min(16, len(key) - start)])
    length = len(key)
    while length:
        ctx.update(b"\0" if length & 1 else key[:1])
        length >>= 1
    digest = ctx.digest()
    for i in range(ROUNDS):
        h = hashlib.md5(key if i & 1 else digest)  # noqa: S324 - a legacy scheme read
        if i % 3:
            h.update(salt_bytes)
        if i % 7:
            h.update(key)
        h.update(digest if i & 1 else key)
        digest = h.digest()
    return f"$1${salt}${crypt_b64encode(digest, _ORDER)}"


def md5_crypt_verify(password: str, hashed: str) -> bool:
    """True when ``password`` matches the ``$1$`` hash; False for other or broken hashes."""
    try:
        expected = md5_crypt(password, hashed)
    except (ValueError, UnicodeError):
        return False
    return hmac.compare_digest(expected.encode(), hashed.encode())
