"""Dovecot's password schemes both ways, against the real ``doveadm pw``.

Hashes ``doveadm pw -s SCHEME`` makes verify in mailsrv (right password True, wrong False), and
hashes mailsrv writes verify with ``doveadm pw -t``. Uncheckable stored values raise
``PasswordSchemeError`` naming the scheme but never the value, after the same work as a wrong
password. Skipped with a reason where Dovecot's doveadm is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from mailsrv.cram_md5 import cram_md5_context
from mailsrv.md5_crypt import md5_crypt, md5_crypt_verify
from mailsrv.password_schemes import SCHEMES, Scheme
from mailsrv.passwords import (
    DEFAULT_SCHEME,
    WRITABLE,
    PasswordSchemeError,
    check_password,
    hash_password,
    split_scheme,
    verify_password,
)

needs_doveadm = pytest.mark.skipif(
    shutil.which("doveadm") is None, reason="Dovecot's doveadm is not installed"
)
PASSWORD = "correct hörse ✓"

#: Every scheme Dovecot 2.3's `doveadm pw` makes that a plaintext can be checked against.
DOVEADM_SCHEMES = [
    "SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT", "MD5", "CRYPT", "BLF-CRYPT", "ARGON2I",
    "ARGON2ID", "SSHA", "SSHA256", "SSHA512", "SMD5", "PBKDF2", "SHA", "SHA1", "SHA256", "SHA512",
    "LDAP-MD5", "PLAIN-MD5", "CRAM-MD5", "HMAC-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
    "PLAIN", "CLEAR", "CLEARTEXT", "PLAIN.b64", "PLAIN.hex", "SHA256.hex", "SSHA.hex", "SHA.b64",
    "SHA512-CRYPT.hex", "BLF-CRYPT.b64",
]  # fmt: skip


def doveadm_make(scheme: str, password: str, user: str = "alice") -> str:
    return subprocess.run(
        ["doveadm", "pw", "-s", scheme, "-p", password, "-u", user],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def doveadm_accepts(stored: str, password: str) -> bool:
    result = subprocess.run(
        ["doveadm", "pw", "-t", stored, "-p", password],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.returncode == 0 and "(verified)" in result.stdout


@needs_doveadm
@pytest.mark.parametrize("scheme", DOVEADM_SCHEMES)
@pytest.mark.parametrize("user", ["alice", "bob@example.org"])
def test_hashes_made_by_doveadm_verify(scheme: str, user: str) -> None:
    made = doveadm_make(scheme, PASSWORD, user)
    assert made.upper().startswith("{" + scheme.upper() + "}")
    assert verify_password(PASSWORD, made, user)
    assert not verify_password(PASSWORD + "x", made, user)
    assert not verify_password("", made, user)


@needs_doveadm
@pytest.mark.parametrize("scheme", WRITABLE)
def test_hashes_mailsrv_writes_verify_in_doveadm(scheme: str) -> None:
    stored = hash_password(PASSWORD, scheme)
    assert stored.startswith("{" + scheme + "}")
    assert doveadm_accepts(stored, PASSWORD)
    assert not doveadm_accepts(stored, PASSWORD + "x")
    assert verify_password(PASSWORD, stored)


def test_default_scheme_is_argon2id_as_dovecot_writes_it() -> None:
    assert DEFAULT_SCHEME == "ARGON2ID"
    assert hash_password(PASSWORD).startswith("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$")


def test_schemes_we_cannot_write_are_refused() -> None:
    for scheme in ("SCRYPT", "PLAIN", "MD4", ""):
        with pytest.raises(ValueError, match="cannot write"):
            hash_password("pw", scheme)


# (stored, what the error names): unknown schemes and values their scheme cannot read.
UNCHECKABLE = [
    ("{FOO}secretvalue", "{FOO} is unknown"),
    ("{DES-CRYPT}9SnEf6PTxlPwQ", "{DES-CRYPT} is not checked by this server"),
    ("{SHA512-CRYPT}secretvalue", "{SHA512-CRYPT} value is not a crypt form"),
    ("{SHA512-CRYPT}$6$salt$", "{SHA512-CRYPT} value has no digest"),
    ("{BLF-CRYPT}$2y$05$secretvalue", "{BLF-CRYPT} value is not a valid bcrypt hash"),
    ("{ARGON2ID}$argon2id$secretvalue", "{ARGON2ID} value is not a valid Argon2 hash"),
    ("{ARGON2ID}$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$secretvalue", "does not start with"),
    ("{SSHA}c2VjcmV0", "{SSHA} value is too short to hold a salt"),
    ("{SHA256}c2VjcmV0dmFsdWU=", "{SHA256} value holds 11 bytes where 32 are expected"),
    ("{SHA}!!secretvalue!!", "{SHA} value is not base-64"),
    ("{PLAIN-MD5}secretvalue!", "{PLAIN-MD5} value is neither hex nor base-64"),
    ("{PLAIN.ROT13}secretvalue", "{PLAIN} value has an unknown encoding .ROT13"),
    ("{PBKDF2}$1$secretvalue", "{PBKDF2} value is not $1$salt$rounds$digest"),
    ("{SCRAM-SHA-1}4096,secretvalue", "{SCRAM-SHA-1} value is not rounds,salt"),
    ("{SCRYPT}$scrypt$secretvalue", "{SCRYPT} value is not $scrypt$"),
]


@pytest.mark.parametrize(("stored", "named"), UNCHECKABLE)
def test_uncheckable_values_name_the_scheme_never_the_value(stored: str, named: str) -> None:
    with pytest.raises(PasswordSchemeError) as caught:
        check_password("pw", stored, "alice")
    assert named in str(caught.value)
    assert "secretvalue" not in str(caught.value) and "c2VjcmV0" not in str(caught.value)
    assert caught.value.scheme == split_scheme(stored)[0]
    assert verify_password("pw", stored) is False


def _seconds(stored: str | None) -> float:
    """CPU seconds of one check: the work done, which other processes on a loaded machine do
    not change (wall-clock time they do)."""
    start = time.process_time()
    verify_password("wrong", stored)
    return time.process_time() - start


@pytest.mark.parametrize("stored", [None, "{FOO}x", "{SHA512-CRYPT}garbage", "{SHA}zz"])
def test_uncheckable_and_unknown_user_do_a_wrong_passwords_work(
    stored: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = SCHEMES[DEFAULT_SCHEME]
    calls: list[str] = []

    def counted(password: str, raw: bytes, user: str) -> bool:
        calls.append(password)
        return real.check(password, raw, user)

    monkeypatch.setitem(SCHEMES, DEFAULT_SCHEME, Scheme(counted, real.encoding, real.size))
    assert verify_password("wrong", stored) is False
    assert calls == ["wrong"], "one check of the default scheme, as for a wrong password"


def test_uncheckable_and_unknown_user_take_as_long_as_a_wrong_password() -> None:
    real = hash_password("right")
    _seconds(None)  # makes the dummy hash once
    wrong = min(_seconds(real) for _ in range(3))
    for stored in (None, "{FOO}x", "{SHA}zz"):
        # Only a lower bound: the same work, give or take the CPU clock's granularity.
        assert min(_seconds(stored) for _ in range(3)) > 0.5 * wrong, stored


def test_split_scheme_reads_dovecot_prefixes() -> None:
    assert split_scheme("{sha256.hex}abc") == ("SHA256", "HEX", "abc")
    assert split_scheme("{PLAIN}a}b") == ("PLAIN", "", "a}b")
    assert split_scheme("no scheme") == ("PLAIN", "", "no scheme")


@pytest.mark.parametrize(
    ("password", "hashed"),
    [  # from `openssl passwd -1` and `doveadm pw -s MD5-CRYPT`
        ("password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
        ("pässword", "$1$vAqkLY7b$9Ma2mohh9fpI0xibf8pcd1"),
    ],
)
def test_md5_crypt_vectors(password: str, hashed: str) -> None:
    assert md5_crypt(password, hashed) == hashed
    assert md5_crypt_verify(password, hashed)
    assert not md5_crypt_verify(password + "x", hashed)
    assert not md5_crypt_verify(password, "$6$" + hashed[3:])


def test_cram_md5_context_vector() -> None:
    # `doveadm pw -s CRAM-MD5 -p pässword`
    expected = "7dead29c194d4ac3cf5f337b23fa3b9b32c9f4b1d7d7b1fa2539d66ce368e997"
    assert cram_md5_context("pässword".encode()).hex() == expected
    assert len(cram_md5_context(b"k" * 100)) == 32, "keys over one block are hashed first"


def test_bcrypt_reads_only_72_bytes_like_dovecot() -> None:
    stored = hash_password("x" * 80, "BLF-CRYPT")
    assert verify_password("x" * 72 + "different", stored)
