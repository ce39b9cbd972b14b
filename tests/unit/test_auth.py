"""Passwords ({ARGON2ID}, {SCRYPT}, {PLAIN}, SHA-crypt), the users file, the Authenticator's policy.

Every other Dovecot scheme, against the real ``doveadm pw``, is in ``test_passwords.py``.
"""

from __future__ import annotations

import os
import stat

import pytest

from mailsrv.auth import Authenticator, UsersFile
from mailsrv.config import Config, Limits
from mailsrv.passwords import hash_password, verify_password
from mailsrv.sha_crypt import sha_crypt, sha_crypt_verify
from mailsrv.store.base import InvalidName

NO_DELAY = Limits(auth_failure_delay=0.0)

# (password, hash): Drepper's specification vectors, and hashes made by `openssl passwd -5/-6`
# and by Dovecot's `doveadm pw -s SHA512-CRYPT / SHA256-CRYPT`.
SHA_CRYPT_VECTORS = [
    (
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    ("Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    (
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "the minimum number is still observed",
        "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    ),
    (
        "pässwörd",
        "$6$saltstring$6PSVl254uv0cWCoUS0qzSX5NenRA/YFCwPzGA9ONu.MmmxqXTWHerEzD8WyuBl3ukfIZZU9uxLD6Bn6p7S3rG.",
    ),
    ("pässwörd", "$5$saltstring$bWOoCRTKNT.aiY/gJjvk1HjBYuRpcYQmcc5hqf6H4T4"),
    (
        "",
        "$6$saltstring$kyGrqt6gmjAdtFLPrflEFifSYLCWWq1pyx95SvqinLDy2UHmj0sTF0MSLMwxPFZc3tu5kQckI8fks0zOPda3n1",
    ),
    (
        "a" * 200,
        "$6$rounds=1400$anotherlongsalts$dazU2kElEeKV9Aheh3JmfT62f6Xsg3Rv46rdsXuID5hT0jTVZ.5zIKPVsA3bmA58ia1JGOc1fcydXfviJXXFI0",
    ),
    (
        "secret",
        "$6$VGdknc2rD.azYqG0$XFZ/v1wDX.iL.VsODw37/ovpegsAPW35giuDNFNapTmwhdwJYdgIW5VcH61XQDGwQvi06J5ah60N5vNmvOWQ..",
    ),
    ("secret", "$5$slbDU46qyO136M/Q$NpbaSkU0PVxkZpjpQE6XvAoGwnhzB14gtV6WFGWNZW1"),
]


@pytest.mark.parametrize(("password", "hashed"), SHA_CRYPT_VECTORS)
def test_sha_crypt_vectors(password, hashed):
    assert sha_crypt(password, hashed) == hashed
    assert sha_crypt_verify(password, hashed)
    assert not sha_crypt_verify(password + "x", hashed)


def test_sha_crypt_long_salt_is_cut_to_16():
    out = sha_crypt("pw", "$6$abcdefghijklmnopqrstuvwxyz$")
    assert out.split("$")[2] == "abcdefghijklmnop"


@pytest.mark.parametrize(
    "broken",
    ["", "$1$md5salt$abc", "$6$", "$6$rounds=abc$salt$x", "$6$rounds=5000", "plain", "$7$x$y"],
)
def test_sha_crypt_rejects_other_or_broken_hashes(broken):
    assert not sha_crypt_verify("", broken)
    assert not sha_crypt_verify("pw", broken)


# What `mailsrv user add` wrote before ARGON2ID: files with these lines must keep working.
OLD_SCRYPT = (
    "{SCRYPT}$scrypt$ln=14,r=8,p=1$i6l2BTj0cmxhaeOK/zf7qg$"
    "BgCvo5JTA/zxYaFd79srHnTsLog20t80oaAtxfr6OyY"
)


def test_argon2id_round_trip():
    stored = hash_password("s3cret pässword")
    assert stored.startswith("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$")
    assert verify_password("s3cret pässword", stored)
    assert not verify_password("s3cret password", stored)
    assert hash_password("same") != hash_password("same"), "salted"


def test_scrypt_written_by_earlier_versions_still_verifies():
    assert verify_password("old pässword", OLD_SCRYPT)
    assert not verify_password("old password", OLD_SCRYPT)


@pytest.mark.parametrize(
    ("stored", "good"),
    [
        ("{PLAIN}pw", True),
        ("{plain}pw", True),
        ("{CLEARTEXT}pw", True),
        ("pw", True),  # no scheme: Dovecot's default_pass_scheme PLAIN
        ("{PLAIN}other", False),
        ("{MD5}whatever", False),  # unsupported schemes never match
        ("{SCRYPT}$scrypt$broken", False),
        ("{SCRYPT}$scrypt$ln=x,r=8,p=1$aa$bb", False),
    ],
)
def test_verify_password_schemes(stored, good):
    assert verify_password("pw", stored) is good


def test_unknown_user_check_is_false():
    assert verify_password("anything", None) is False


def test_users_file_round_trip(tmp_path):
    path = tmp_path / "etc" / "users"
    users = UsersFile(path)
    assert users.names() == []
    users.set("alice", "pw1")
    users.set("bob", "pw2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert users.names() == ["alice", "bob"]
    assert verify_password("pw1", UsersFile(path).get("alice"))
    assert users.delete("alice") is True
    assert users.delete("alice") is False
    assert UsersFile(path).names() == ["bob"]
    assert not list(path.parent.glob("*.tmp"))


def test_users_file_reads_dovecot_passwd_file_lines(tmp_path):
    path = tmp_path / "users"
    path.write_text(
        "# comment\n\n"
        "carol:{PLAIN}pw:1000:1000::/home/carol::\n"
        "dave:{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n"
        "not a user line\n"
    )
    users = UsersFile(path)
    assert users.names() == ["carol", "dave"]
    assert verify_password("pw", users.get("carol"))
    assert verify_password("Hello world!", users.get("dave"))


def test_users_file_notices_changes_by_others(tmp_path):
    path = tmp_path / "users"
    users = UsersFile(path)
    users.set("alice", "pw")
    assert users.names() == ["alice"]
    path.write_text("alice:{PLAIN}x\nerin:{PLAIN}y\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert users.names() == ["alice", "erin"]


def test_users_file_refuses_bad_names(tmp_path):
    users = UsersFile(tmp_path / "users")
    for bad in ("", "../x", "a:b", "a b", ".x", "x" * 65):
        with pytest.raises(InvalidName):
            users.set(bad, "pw")
    assert not (tmp_path / "users").exists()


def make_auth(tmp_path, **overrides) -> Authenticator:
    config = Config(users_file=tmp_path / "users", limits=NO_DELAY, **overrides)
    return Authenticator(config)


async def test_login_against_users_file(tmp_path):
    auth = make_auth(tmp_path)
    auth.users.set("alice", "right")
    assert await auth.login("alice", "right", "127.0.0.1") == "alice"
    assert await auth.login("alice", "wrong", "127.0.0.1") is None
    assert await auth.login("nobody", "right", "127.0.0.1") is None
    assert await auth.login("../evil", "x", "127.0.0.1") is None
    assert auth.known("alice") and not auth.known("nobody")


async def test_dev_mode_accepts_any_password_except_for_listed_users(tmp_path):
    auth = make_auth(tmp_path, dev=True)
    auth.users.set("alice", "right")
    assert await auth.login("newbie", "anything", "127.0.0.1") == "newbie"
    assert await auth.login("alice", "wrong", "127.0.0.1") is None
    assert await auth.login("alice", "right", "127.0.0.1") == "alice"


async def test_api_users_and_apop_secret(tmp_path):
    auth = make_auth(tmp_path)
    auth.add_user("fixture", "pw")
    auth.users.set("scrypted", "pw")
    (tmp_path / "users").write_text((tmp_path / "users").read_text() + "plainuser:{PLAIN}clear\n")
    assert await auth.login("fixture", "pw", "10.0.0.1") == "fixture"
    assert auth.secret_for_apop("fixture") == "pw"
    assert auth.secret_for_apop("plainuser") == "clear"
    assert auth.secret_for_apop("scrypted") is None
    with pytest.raises(InvalidName):
        auth.add_user("bad name", "pw")


async def test_address_blocked_after_too_many_failures(tmp_path):
    limits = Limits(auth_failure_delay=0.0, auth_failures_per_ip=3, auth_block_seconds=60)
    auth = Authenticator(Config(users_file=tmp_path / "users", limits=limits))
    auth.add_user("alice", "pw")
    for _ in range(3):
        assert await auth.login("alice", "bad", "192.0.2.1") is None
    assert auth.blocked("192.0.2.1")
    assert await auth.login("alice", "pw", "192.0.2.1") is None, "even the right password"
    assert not auth.blocked("192.0.2.2")
    assert await auth.login("alice", "pw", "192.0.2.2") == "alice"


def test_plaintext_policy():
    auth = Authenticator(Config())
    assert auth.plaintext_allowed(True, "203.0.113.5")
    assert auth.plaintext_allowed(False, "127.0.0.1")
    assert auth.plaintext_allowed(False, "::1")
    assert not auth.plaintext_allowed(False, "203.0.113.5")
    relaxed = Authenticator(Config(allow_plaintext_auth=True))
    assert relaxed.plaintext_allowed(False, "203.0.113.5")


async def test_full_address_logs_in_as_the_local_user() -> None:
    from mailsrv.auth import Authenticator
    from mailsrv.config import Config, Limits

    auth = Authenticator(Config(limits=Limits(auth_failure_delay=0.0)))
    auth.add_user("alice", "pw")
    assert await auth.login("alice@localhost", "pw", "127.0.0.1") == "alice"
    assert await auth.login("alice@elsewhere.example", "pw", "127.0.0.1") is None
    assert await auth.login("alice", "pw", "127.0.0.1") == "alice"


async def test_uncheckable_scheme_logs_one_line_with_user_and_scheme(tmp_path, caplog):
    auth = make_auth(tmp_path)
    (tmp_path / "users").write_text("eve:{FOO}secretvalue\nfay:{SHA512-CRYPT}$6$secretvalue\n")
    with caplog.at_level("WARNING", logger="mailsrv.auth"):
        assert await auth.login("eve", "pw", "127.0.0.1") is None
        assert await auth.login("fay", "pw", "127.0.0.1") is None
    lines = [r.getMessage() for r in caplog.records if r.name == "mailsrv.auth"]
    assert len(lines) == 2
    assert "user eve: password scheme {FOO} is unknown; login refused" in lines[0]
    assert "user fay: password scheme {SHA512-CRYPT} value has no digest" in lines[1]
    assert not any("secretvalue" in line for line in lines)
    assert not any("secretvalue" in r.getMessage() for r in caplog.records)


async def test_attempt_counts_like_login_and_leaves_the_wait_to_the_caller(tmp_path):
    """nginx's /auth/nginx: the same counters, the delay returned (nginx's Auth-Wait) instead
    of slept (slept, these delays would make this test take over a minute)."""
    limits = Limits(auth_failure_delay=5.0, auth_failures_per_ip=6, auth_block_seconds=60)
    auth = Authenticator(Config(users_file=tmp_path / "users", limits=limits))
    auth.add_user("alice", "pw")
    delays = [(await auth.attempt("alice", "bad", "192.0.2.1"))[1] for _ in range(5)]
    assert delays == [5.0, 5.0, 5.0, 5.0, 10.0]  # it grows every 5 failures, as login's sleep
    assert await auth.attempt("alice", "pw", "192.0.2.1") == ("alice", 0.0)
    for _ in range(6):
        await auth.attempt("alice", "bad", "192.0.2.1")
    assert auth.blocked("192.0.2.1")
    assert await auth.attempt("alice", "pw", "192.0.2.1") == (None, 0.0)
