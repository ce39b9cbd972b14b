"""SHA-crypt (``$5$`` SHA-256 and ``$6$`` SHA-512), the hashes of Dovecot's ``{SHA512-CRYPT}``.

This is Ulrich Drepper's published "Unix crypt using SHA-256 and SHA-512" algorithm, written
with ``hashlib``. It stays here because no maintained library covers it: the stdlib ``crypt``
module is gone in Python 3.13, passlib has had no release since 2020, and argon2-cffi and
bcrypt (used in ``passwords.py``) do one algorithm each. A hash reads
``$6$[rounds=N$]salt$digest``: the salt is at most 16 characters, rounds default to 5000 and are
clamped to 1000..999,999,999, and the digest is the final hash in crypt's own base-64 with a
fixed byte order. Users-file hashes written by ``doveadm pw -s SHA512-CRYPT`` verify here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999_999_999
SALT_MAX = 16

#: Output byte order of the final digest, three bytes at a time (from the specification).
_ORDER_512: tuple[tuple[int, ...], ...] = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41), (63,),
)  # fmt: skip
_ORDER_256: tuple[tuple[int, ...], ...] = (
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14), (15, 25, 5),
    (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29), (31, 30),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Variant:
    new: Callable[[], hashlib._Hash]
    size: int
    order: tuple[tuple[int, ...], ...]


_VARIANTS = {
    "5": _Variant(hashlib.sha256, 32, _ORDER_256),
    "6": _Variant(hashlib.sha512, 64, _ORDER_512),
}


def _h(variant: _Variant, *parts: bytes) -> bytes:
    h = variant.new()
    for part in parts:
        h.update(part)
    return h.digest()


def _stretch(block: bytes, length: int) -> bytes:
    """``block`` repeated and cut to ``length`` bytes."""
    return (block * (length // len(block) + 1))[:length]


def crypt_b64encode(digest: bytes, order: tuple[tuple[int, ...], ...]) -> str:
    """``digest`` in crypt's base-64, taking its bytes in the groups of ``order``."""
    out: list[str] = []
    for group in order:
        # Bytes are packed big-endian into a word; the last group is shorter (2 or 1 bytes).
        word = 0
        for index in group:
            word = (word << 8) | digest[index]
        for _ in range(len(group) + 1):
            out.append(_ITOA64[word & 0x3F])
            word >>= 6
    return "".join(out)


def _digest(variant: _Variant, key: bytes, salt: bytes, rounds: int) -> bytes:
    n = variant.size
    b = _h(variant, key, salt, key)
    a = variant.new()
    a.update(key + salt + _stretch(b, len(key)))
    length = len(key)
    while length:
        a.update(b if length & 1 else key)
        length >>= 1
    c = a.digest()
    p = _stretch(_h(variant, key * len(key)), len(key))
    s = _stretch(_h(variant, salt * (16 + c[0])), len(salt))
    for i in range(rounds):
        h = variant.new()
        h.update(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()
    assert len(c) == n  # noqa: S101 - internal invariant, not input validation
    return c


def sha_crypt(password: str, setting: str) -> str:
    """Hash ``password`` with the ``$5$``/``$6$`` setting (salt and rounds) of ``setting``.

    ``setting`` may be a whole hash; only its id, rounds and salt are used. Raises
    ``ValueError`` for anything that is not a SHA-crypt setting.
    """
    if not setting.startswith(("$5$", "$6$")):
        raise ValueError("not a SHA-crypt hash")
    variant = _VARIANTS[setting[1]]
    rest = setting[3:]
    rounds = ROUNDS_DEFAULT
    explicit_rounds = False
    if rest.startswith("rounds="):
        value, sep, rest = rest[7:].partition("$")
        if not sep or not value.isdigit():
            raise ValueError("bad rounds= in SHA-crypt hash")
        rounds = min(max(int(value), ROUNDS_MIN), ROUNDS_MAX)
        explicit_rounds = True
    salt = rest.split("$", 1)[0][:SALT_MAX]
    digest = _digest(variant, password.encode(), salt.encode(), rounds)
    prefix = f"${setting[1]}$" + (f"rounds={rounds}$" if explicit_rounds else "")
    return f"{prefix}{salt}${crypt_b64encode(digest, variant.order)}"


def sha_crypt_verify(password: str, hashed: str) -> bool:
    """True when ``password`` matches the ``$5$``/``$6$`` hash; False for other or broken hashes."""
    try:
        expected = sha_crypt(password, hashed)
    except (ValueError, UnicodeError):
        return False
    return hmac.compare_digest(expected.encode(), hashed.encode())
