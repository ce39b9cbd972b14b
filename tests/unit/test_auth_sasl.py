"""The Authenticator's side of SCRAM-SHA-256, OAUTHBEARER and XOAUTH2: where keys and tokens come
from, which mechanisms it offers, and ``resolve`` driving whole exchanges."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import subprocess
from pathlib import Path

import pytest

from mailsrv.auth import Authenticator, UsersFile
from mailsrv.config import Config, Limits
from mailsrv.net import sasl
from mailsrv.net.scram_keys import ScramKeys
from mailsrv.passwords import check_password, hash_password
from tests.dovecot import DOVEADM

NO_DELAY = Limits(auth_failure_delay=0.0)
DOVEADM_SCRAM = (
    "{SCRAM-SHA-256}4096,CZ3Dht9GQDXXvhvoXHqKUA==,qS6V+ukhjJfxBAK82TAsQRMcZf+aPh5RIiUlvTEPkR0=,"
    "/opWQzH+wU+SCXsG7huN4E8NkJDa7e0Auq6QELwTbNs="
)  # doveadm pw -s SCRAM-SHA-256 -p secret


def authenticator(tmp_path: Path, lines: str, dev: bool = False) -> Authenticator:
    (tmp_path / "users").write_text(lines)
    return Authenticator(Config(users_file=tmp_path / "users", dev=dev, limits=NO_DELAY))


def client_final(keys_password: bytes, first_bare: str, server_first: bytes) -> bytes:
    """A SCRAM-SHA-256 client's final message for ``keys_password`` (RFC 5802 §3)."""
    attrs = dict(a.split("=", 1) for a in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(
        "sha256", keys_password, base64.b64decode(attrs["s"]), int(attrs["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored = hashlib.sha256(client_key).digest()
    without = f"c=biws,r={attrs['r']}"
    message = f"{first_bare},{server_first.decode()},{without}".encode()
    signature = hmac.digest(stored, message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"{without},p={base64.b64encode(proof).decode()}".encode()


async def scram_login(auth: Authenticator, user: str, password: str) -> sasl.Step | sasl.LoggedIn:
    exchange = sasl.start("SCRAM-SHA-256")
    assert exchange is not None
    bare = f"n={user},r=clientnonce"
    step = await auth.resolve(exchange, exchange.begin(f"n,,{bare}".encode()), "127.0.0.1")
    assert isinstance(step, sasl.Challenge)
    final = client_final(password.encode(), bare, step.data)
    step = await auth.resolve(exchange, exchange.receive(final), "127.0.0.1")
    if not isinstance(step, sasl.Challenge):
        return step
    assert step.data.startswith(b"v=")
    return await auth.resolve(exchange, exchange.receive(b""), "127.0.0.1")


@pytest.mark.parametrize(
    "stored", [DOVEADM_SCRAM, "{PLAIN}secret", "{PLAIN.B64}c2VjcmV0", "{CLEAR}secret", "secret"]
)
async def test_scram_logs_in_with_every_secret_that_allows_it(tmp_path: Path, stored: str) -> None:
    auth = authenticator(tmp_path, f"ann:{stored}\n")
    assert "SCRAM-SHA-256" in auth.mechanisms()
    assert await scram_login(auth, "ann", "secret") == sasl.LoggedIn("ann")
    assert await scram_login(auth, "ann@localhost", "secret") == sasl.LoggedIn("ann")
    assert await scram_login(auth, "ann", "wrong") == sasl.SaslError(sasl.Failure.REJECTED)


async def test_scram_for_fixture_users_and_the_same_salt_each_time(tmp_path: Path) -> None:
    auth = Authenticator(Config(dev=True, limits=NO_DELAY))
    assert "SCRAM-SHA-256" not in auth.mechanisms()  # dev users have no secret to derive from
    auth.add_user("bob", "pw")
    assert "SCRAM-SHA-256" in auth.mechanisms()
    assert await scram_login(auth, "bob", "pw") == sasl.LoggedIn("bob")
    assert auth.scram_keys("bob").salt == auth.scram_keys("bob").salt
    # A user without keys gets made-up ones with a stable salt too: nothing tells them apart.
    nobody = auth.scram_keys("nobody")
    assert nobody.salt == auth.scram_keys("nobody").salt and len(nobody.salt) == 16
    assert await scram_login(auth, "nobody", "pw") == sasl.SaslError(sasl.Failure.REJECTED)


async def test_scram_refused_for_a_hash_it_cannot_use_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth = authenticator(tmp_path, f"ann:{hash_password('secret', 'SHA512-CRYPT')}\n")
    assert "SCRAM-SHA-256" not in auth.mechanisms()
    with caplog.at_level(logging.INFO, "mailsrv.auth"):
        assert await scram_login(auth, "ann", "secret") == sasl.SaslError(sasl.Failure.REJECTED)
    assert "user ann: SCRAM-SHA-256 needs a {SCRAM-SHA-256}" in caplog.text
    assert "$6$" not in caplog.text


async def test_a_malformed_scram_entry_is_logged_without_its_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth = authenticator(tmp_path, "ann:{SCRAM-SHA-256}4096,AAAA,AAAA\n")
    with caplog.at_level(logging.INFO, "mailsrv.auth"):
        assert await scram_login(auth, "ann", "x") == sasl.SaslError(sasl.Failure.REJECTED)
    assert "user ann: password scheme {SCRAM-SHA-256} value is not" in caplog.text
    assert "AAAA" not in caplog.text


def test_user_add_scram_writes_dovecots_form(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "users")
    users.set("ann", "secret", "SCRAM-SHA-256")
    stored = users.get("ann")
    assert stored is not None and stored.startswith("{SCRAM-SHA-256}4096,")
    keys = ScramKeys.parse(stored.partition("}")[2], "sha256")
    assert len(keys.salt) == 16
    assert check_password("secret", stored) and not check_password("other", stored)


@pytest.mark.skipif(not DOVEADM.exists(), reason="needs Dovecot's doveadm (dovecot-core)")
def test_doveadm_verifies_what_user_add_writes(tmp_path: Path) -> None:
    stored = hash_password("secret", "SCRAM-SHA-256")
    done = subprocess.run(
        [str(DOVEADM), "pw", "-t", stored, "-p", "secret"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "(verified)" in done.stdout, done.stderr


def test_rewriting_a_user_keeps_the_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("ann:{PLAIN}a::::::mailsrv_oauth_token=t1 userdb_quota_rule=*:storage=1G\n")
    users = UsersFile(path)
    users.set("ann", "b", "SSHA512")
    users.set("bob", "c", "SSHA512")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("ann:{SSHA512}")
    assert lines[0].endswith("::::::mailsrv_oauth_token=t1 userdb_quota_rule=*:storage=1G")
    assert UsersFile(path).tokens("ann") == ("t1",)


async def bearer(auth: Authenticator, mechanism: str, message: bytes) -> sasl.Step | sasl.LoggedIn:
    exchange = sasl.start(mechanism)
    assert exchange is not None
    step = await auth.resolve(exchange, exchange.begin(message), "127.0.0.1")
    if isinstance(step, sasl.Challenge):  # the error challenge; the client answers ^A
        return await auth.resolve(exchange, exchange.receive(b"\x01"), "127.0.0.1")
    return step


def oauthbearer(user: str, token: str) -> bytes:
    authz = f"a={user}" if user else ""
    return f"n,{authz},\x01host=localhost\x01auth=Bearer {token}\x01\x01".encode()


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


async def test_tokens_from_the_users_file(tmp_path: Path) -> None:
    auth = authenticator(
        tmp_path,
        "ann:{SSHA512}x::::::mailsrv_oauth_token=tok-ann mailsrv_oauth_token=tok-ann-2\n"
        "bob:{SSHA512}x:1000:1000::/home/bob::mailsrv_oauth_token=tok-bob\n"
        "cat:{SSHA512}x\n",
    )
    assert auth.mechanisms() == ("PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2")
    refused = sasl.SaslError(sasl.Failure.TOKEN_REFUSED)
    assert await bearer(auth, "OAUTHBEARER", oauthbearer("ann", "tok-ann")) == sasl.LoggedIn("ann")
    assert await bearer(auth, "OAUTHBEARER", oauthbearer("ann@localhost", "tok-ann-2")) == (
        sasl.LoggedIn("ann")
    )
    assert await bearer(auth, "OAUTHBEARER", oauthbearer("", "tok-bob")) == sasl.LoggedIn("bob")
    assert await bearer(auth, "XOAUTH2", xoauth2("bob@localhost", "tok-bob")) == sasl.LoggedIn(
        "bob"
    )
    assert await bearer(auth, "XOAUTH2", xoauth2("ann", "tok-bob")) == refused
    assert await bearer(auth, "XOAUTH2", xoauth2("cat", "anything")) == refused
    assert await bearer(auth, "OAUTHBEARER", oauthbearer("", "nobody's")) == refused
    assert await bearer(auth, "XOAUTH2", xoauth2("../etc", "tok-ann")) == refused


async def test_dev_mode_takes_any_token_for_the_user_it_names(tmp_path: Path) -> None:
    auth = Authenticator(Config(dev=True, limits=NO_DELAY))
    assert auth.mechanisms() == ("PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2")
    assert await bearer(auth, "XOAUTH2", xoauth2("zoe@localhost", "x")) == sasl.LoggedIn("zoe")
    assert await bearer(auth, "OAUTHBEARER", oauthbearer("zoe", "y")) == sasl.LoggedIn("zoe")
    assert await bearer(auth, "OAUTHBEARER", oauthbearer("", "y")) == sasl.SaslError(
        sasl.Failure.TOKEN_REFUSED
    )


async def test_no_tokens_no_bearer_mechanisms(tmp_path: Path) -> None:
    auth = authenticator(tmp_path, f"ann:{hash_password('pw', 'SSHA512')}\n")
    assert auth.mechanisms() == ("PLAIN", "LOGIN")


async def test_failed_proofs_and_tokens_count_towards_the_block(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("ann:{PLAIN}secret::::::mailsrv_oauth_token=t\n")
    limits = Limits(auth_failure_delay=0.0, auth_failures_per_ip=2, auth_block_seconds=60)
    auth = Authenticator(Config(users_file=tmp_path / "users", limits=limits))
    assert await scram_login(auth, "ann", "wrong") == sasl.SaslError(sasl.Failure.REJECTED)
    assert not auth.blocked("127.0.0.1")
    await bearer(auth, "XOAUTH2", xoauth2("ann", "wrong"))
    assert auth.blocked("127.0.0.1")
    # Blocked: even the right token and the right password are refused for now.
    assert await bearer(auth, "XOAUTH2", xoauth2("ann", "t")) == sasl.SaslError(
        sasl.Failure.TOKEN_REFUSED
    )
    exchange = sasl.start("SCRAM-SHA-256")
    assert exchange is not None
    step = exchange.begin(b"n,,n=ann,r=abc")
    assert await auth.resolve(exchange, step, "127.0.0.1") == sasl.SaslError(
        sasl.Failure.TOKEN_REFUSED
    )
