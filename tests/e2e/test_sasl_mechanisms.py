"""SCRAM-SHA-256, OAUTHBEARER and XOAUTH2 against a running server: imaplib's AUTHENTICATE, raw
POP3 and SMTP exchanges, and curl (its OAuth bearer support and PLAIN's --sasl-authzid)."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import shutil
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailsrv.passwords import hash_password
from tests.dovecot import DOVEADM
from tests.e2e.netclient import Conn
from tests.e2e.sasl_client import ScramClient

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
SERVICES = {"imap", "pop3", "submission"}
CURL = shutil.which("curl")


def b64(data: bytes | str) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


def users(tmp_path: Path) -> None:
    """ann: keys as doveadm writes them; bob: a plain-text secret; cat: a hash SCRAM cannot use;
    dan: an OAuth token (a users-file extra field)."""
    (tmp_path / "users").write_text(
        f"ann:{hash_password('ann-pw', 'SCRAM-SHA-256')}\n"
        "bob:{PLAIN}bob-pw\n"
        f"cat:{hash_password('cat-pw', 'SSHA512')}\n"
        f"dan:{hash_password('dan-pw', 'SSHA512')}::::::mailsrv_oauth_token=dan-token\n"
    )


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str) -> bytes:
    return f"n,a={user},\x01host={HOST}\x01auth=Bearer {token}\x01\x01".encode()


# --- IMAP: imaplib's AUTHENTICATE -------------------------------------------------------------


def imap_scram(port: int, user: str, password: str) -> tuple[str, list[bytes], bool]:
    client = ScramClient(user, password)
    with imaplib.IMAP4(HOST, port, timeout=10) as imap:
        try:
            typ, data = imap.authenticate("SCRAM-SHA-256", client.imaplib())
        except imaplib.IMAP4.error as exc:
            return "NO", [str(exc).encode()], client.verified
        imap.select("INBOX")
        return typ, data, client.verified


async def test_imap_scram_sha_256(make_server: Any, tmp_path: Path) -> None:
    users(tmp_path)
    async with make_server(services=SERVICES, dev=False) as server:
        port = server.ports.imap
        server.context.auth.add_user("eve", "eve-pw")  # a fixture user: the password in memory

        def capabilities() -> tuple[str, ...]:
            with imaplib.IMAP4(HOST, port, timeout=10) as imap:
                return tuple(imap.capabilities)

        caps = await asyncio.to_thread(capabilities)
        assert "AUTH=SCRAM-SHA-256" in caps and "AUTH=XOAUTH2" in caps
        for user, password in (("ann", "ann-pw"), ("bob@localhost", "bob-pw"), ("eve", "eve-pw")):
            typ, _, verified = await asyncio.to_thread(imap_scram, port, user, password)
            assert (typ, verified) == ("OK", True), user
        typ, data, verified = await asyncio.to_thread(imap_scram, port, "ann", "wrong")
        assert typ == "NO" and b"AUTHENTICATIONFAILED" in data[0] and not verified
        typ, data, _ = await asyncio.to_thread(imap_scram, port, "cat", "cat-pw")
        assert typ == "NO"  # an SSHA512 hash cannot give SCRAM keys: the password never helps


def imap_bearer(port: int, mechanism: str, message: bytes) -> tuple[str, list[bytes]]:
    answers = iter((message, b"\x01"))
    with imaplib.IMAP4(HOST, port, timeout=10) as imap:
        try:
            typ, data = imap.authenticate(mechanism, lambda _: next(answers))
        except imaplib.IMAP4.error as exc:
            return "NO", [str(exc).encode()]
        imap.select("INBOX")
        return typ, data


async def test_imap_bearer_tokens_from_the_users_file(make_server: Any, tmp_path: Path) -> None:
    users(tmp_path)
    async with make_server(services=SERVICES, dev=False) as server:
        port = server.ports.imap
        for mechanism, message in (
            ("XOAUTH2", xoauth2("dan@localhost", "dan-token")),
            ("OAUTHBEARER", oauthbearer("dan", "dan-token")),
        ):
            typ, _ = await asyncio.to_thread(imap_bearer, port, mechanism, message)
            assert typ == "OK", mechanism
        typ, data = await asyncio.to_thread(imap_bearer, port, "XOAUTH2", xoauth2("dan", "bad"))
        assert typ == "NO" and b"AUTHENTICATIONFAILED" in data[0]
        typ, data = await asyncio.to_thread(imap_bearer, port, "XOAUTH2", xoauth2("ann", "x"))
        assert typ == "NO"


async def test_imap_raw_scram_with_sasl_ir_and_a_bad_message(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        server.context.auth.add_user("eve", "eve-pw")
        conn = await Conn.open(server.ports.imap)
        await conn.line()
        client = ScramClient("eve", "eve-pw")
        await conn.send(b"a AUTHENTICATE SCRAM-SHA-256 " + b64(client.first()) + b"\r\n")
        first = await conn.line()
        assert first.startswith(b"+ ")
        await conn.send(b64(client.final(base64.b64decode(first[2:]))) + b"\r\n")
        final = await conn.line()
        await conn.send(b64(client.check(base64.b64decode(final[2:]))) + b"\r\n")
        assert (await conn.line()).startswith(b"a OK [CAPABILITY ")
        await conn.close()
        conn = await Conn.open(server.ports.imap)
        await conn.line()
        await conn.send(b"b AUTHENTICATE SCRAM-SHA-256 " + b64("p=tls-unique,,n=eve,r=x") + b"\r\n")
        assert await conn.line() == b"b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        await conn.send(b"c AUTHENTICATE XOAUTH2 " + b64(xoauth2("zoe", "any")) + b"\r\n")
        assert (await conn.line()).startswith(b"c OK")  # dev mode: any token for the user named
        await conn.close()


async def test_mechanisms_that_cannot_work_are_neither_listed_nor_accepted(
    make_server: Any, tmp_path: Path
) -> None:
    (tmp_path / "users").write_text(f"cat:{hash_password('cat-pw', 'SSHA512')}\n")
    async with make_server(services=SERVICES, dev=False) as server:
        conn = await Conn.open(server.ports.imap)
        greeting = await conn.line()
        assert b"AUTH=PLAIN AUTH=LOGIN" in greeting
        assert b"SCRAM" not in greeting and b"OAUTH" not in greeting
        await conn.send(b"a AUTHENTICATE SCRAM-SHA-256\r\n")
        assert await conn.line() == b"a NO [CANNOT] Unsupported authentication mechanism\r\n"
        await conn.close()
        conn = await Conn.open(server.ports.pop3)
        await conn.line()
        await conn.send(b"AUTH XOAUTH2 " + b64(xoauth2("cat", "t")) + b"\r\n")
        assert await conn.line() == b"-ERR unsupported SASL mechanism XOAUTH2\r\n"
        await conn.close()

        def ehlo() -> tuple[str, tuple[int, bytes]]:
            with smtplib.SMTP(HOST, server.ports.submission, timeout=10) as smtp:
                smtp.ehlo("client.test")
                return smtp.esmtp_features["auth"], smtp.docmd("AUTH", "SCRAM-SHA-256")

        mechs, answer = await asyncio.to_thread(ehlo)
        assert set(mechs.split()) == {"PLAIN", "LOGIN"}
        assert answer[0] == 504


# --- POP3: a raw exchange ---------------------------------------------------------------------


async def test_pop3_auth_scram_and_bearer(make_server: Any, tmp_path: Path) -> None:
    users(tmp_path)
    async with make_server(services=SERVICES, dev=False) as server:
        conn = await Conn.open(server.ports.pop3)
        await conn.line()
        await conn.send(b"CAPA\r\n")
        caps = await conn.until(b".")
        assert b"SASL PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2\r\n" in caps
        client = ScramClient("bob", "bob-pw")
        await conn.send(b"AUTH SCRAM-SHA-256\r\n")
        assert await conn.line() == b"+ \r\n"
        await conn.send(b64(client.first()) + b"\r\n")
        first = await conn.line()
        await conn.send(b64(client.final(base64.b64decode(first[2:]))) + b"\r\n")
        final = await conn.line()
        await conn.send(b64(client.check(base64.b64decode(final[2:]))) + b"\r\n")
        assert (await conn.line()).startswith(b"+OK")
        await conn.send(b"QUIT\r\n")
        await conn.close()

        conn = await Conn.open(server.ports.pop3)
        await conn.line()
        await conn.send(b"AUTH XOAUTH2 " + b64(xoauth2("dan", "wrong")) + b"\r\n")
        error = await conn.line()
        assert error.startswith(b"+ ") and b"401" in base64.b64decode(error[2:])
        await conn.send(b"\r\n")
        assert await conn.line() == b"-ERR [AUTH] invalid credentials\r\n"
        await conn.send(b"AUTH OAUTHBEARER " + b64(oauthbearer("dan", "dan-token")) + b"\r\n")
        assert (await conn.line()).startswith(b"+OK")
        await conn.close()


# --- SMTP: a raw exchange over smtplib's docmd ------------------------------------------------


async def test_smtp_auth_scram_and_bearer(make_server: Any, tmp_path: Path) -> None:
    users(tmp_path)
    async with make_server(services=SERVICES, dev=False) as server:

        def talk() -> list[tuple[int, bytes]]:
            replies = []
            with smtplib.SMTP(HOST, server.ports.submission, timeout=10) as smtp:
                smtp.ehlo("client.test")
                assert set(smtp.esmtp_features["auth"].split()) == {
                    "PLAIN",
                    "LOGIN",
                    "SCRAM-SHA-256",
                    "OAUTHBEARER",
                    "XOAUTH2",
                }
                client = ScramClient("ann", "ann-pw")
                code, first = smtp.docmd("AUTH", "SCRAM-SHA-256 " + b64(client.first()).decode())
                replies.append((code, first))
                final = client.final(base64.b64decode(first))
                code, v = smtp.docmd(b64(final).decode())
                replies.append((code, v))
                replies.append(smtp.docmd(client.check(base64.b64decode(v)).decode()))
                replies.append(smtp.mail("ann@localhost"))
            with smtplib.SMTP(HOST, server.ports.submission, timeout=10) as smtp:
                smtp.ehlo("client.test")
                replies.append(smtp.docmd("AUTH", "XOAUTH2 " + b64(xoauth2("dan", "no")).decode()))
                replies.append(smtp.docmd(""))
                token = b64(oauthbearer("dan@localhost", "dan-token")).decode()
                replies.append(smtp.docmd("AUTH", "OAUTHBEARER " + token))
            with smtplib.SMTP(HOST, server.ports.submission, timeout=10) as smtp:
                smtp.ehlo("client.test")
                client = ScramClient("ann", "ann-pw")
                smtp.docmd("AUTH", "SCRAM-SHA-256 " + b64(client.first()).decode())
                replies.append(smtp.docmd(b64(b"c=biws,r=changed,p=AAAA").decode()))
            return replies

        replies = await asyncio.to_thread(talk)
    codes = [code for code, _ in replies]
    assert codes == [334, 334, 235, 250, 334, 535, 235, 501]
    assert b"401" in base64.b64decode(replies[4][1])
    assert replies[7][1] == b"5.5.2 Malformed SCRAM-SHA-256 response"


# --- curl -------------------------------------------------------------------------------------


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "--silent", "--show-error", "--max-time", "20", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(CURL is None, reason="needs curl")
async def test_curl_oauth2_bearer_on_imap_pop3_and_smtp(make_server: Any, tmp_path: Path) -> None:
    users(tmp_path)
    async with make_server(services=SERVICES, dev=False) as server:
        await server.store.ensure_user("dan")
        await server.store.deliver("dan", b"Subject: hi\r\n\r\nhello\r\n")
        ports = server.ports
        imap = f"imap://{HOST}:{ports.imap}/INBOX;UID=1"
        # curl picks OAUTHBEARER when the server offers it (curl 7.88 does so even when told
        # AUTH=XOAUTH2; XOAUTH2 is tested with imaplib and raw exchanges above).
        done = await asyncio.to_thread(
            curl, "--verbose", "--user", "dan:", "--oauth2-bearer", "dan-token", imap
        )
        assert done.returncode == 0 and "hello" in done.stdout, done.stderr
        assert "AUTHENTICATE OAUTHBEARER" in done.stderr
        done = await asyncio.to_thread(
            curl, "--user", "dan:", "--oauth2-bearer", "dan-token", f"pop3://{HOST}:{ports.pop3}/1"
        )
        assert done.returncode == 0 and "hello" in done.stdout, done.stderr
        done = await asyncio.to_thread(
            curl, "--user", "dan:", "--oauth2-bearer", "wrong", f"pop3://{HOST}:{ports.pop3}/1"
        )
        assert done.returncode != 0
        mail = tmp_path / "mail.txt"
        mail.write_text("Subject: via curl\r\n\r\nsent with a bearer token\r\n")
        done = await asyncio.to_thread(
            curl,
            "--user",
            "dan:",
            "--oauth2-bearer",
            "dan-token",
            "--mail-from",
            "dan@localhost",
            "--mail-rcpt",
            "dan@localhost",
            "--upload-file",
            str(mail),
            f"smtp://{HOST}:{ports.submission}",
        )
        assert done.returncode == 0, done.stderr
        inbox = await (await server.store.open("dan", "INBOX")).snapshot()
        assert len(inbox.messages) == 2


@pytest.mark.skipif(CURL is None, reason="needs curl")
async def test_curl_sasl_authzid_with_plain(make_server: Any, tmp_path: Path) -> None:
    users(tmp_path)
    async with make_server(services={"pop3"}, dev=False) as server:
        url = f"pop3://{HOST}:{server.ports.pop3}/"
        base = ("--user", "bob:bob-pw", "--login-options", "AUTH=PLAIN", url)
        same = await asyncio.to_thread(curl, "--sasl-authzid", "bob", *base)
        assert same.returncode == 0, same.stderr
        other = await asyncio.to_thread(curl, "--sasl-authzid", "ann", *base)
        assert other.returncode != 0  # acting as another user is never allowed


# --- GNU SASL's client (gsasl): SCRAM-SHA-256 from another implementation -------------------

GSASL = shutil.which("gsasl")


def gsasl(*args: str) -> subprocess.CompletedProcess[str]:
    assert GSASL is not None
    return subprocess.run(
        [GSASL, "--client", "--no-starttls", "-m", "SCRAM-SHA-256", *args],
        capture_output=True,
        text=True,
        input="",
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(GSASL is None, reason="needs gsasl (Debian's gsasl)")
async def test_gsasl_scram_sha_256_on_imap_and_smtp(make_server: Any, tmp_path: Path) -> None:
    """gsasl checks the server's signature too ("server trusted"); its own --mkpasswd keys
    (65536 iterations, a 12-byte salt) log in like doveadm's."""
    made = await asyncio.to_thread(
        subprocess.run,
        [str(GSASL), "--mkpasswd", "-m", "SCRAM-SHA-256", "-p", "fay-pw"],
        capture_output=True,
        text=True,
        check=True,
    )
    users(tmp_path)
    with (tmp_path / "users").open("a") as f:
        f.write(f"fay:{made.stdout.strip()}\n")
    async with make_server(services=SERVICES, dev=False) as server:
        imap = f"{HOST}:{server.ports.imap}"
        smtp = f"{HOST}:{server.ports.submission}"
        for user, password in (("ann", "ann-pw"), ("bob", "bob-pw"), ("fay", "fay-pw")):
            for proto, where in (("--imap", imap), ("--smtp", smtp)):
                done = await asyncio.to_thread(
                    gsasl, proto, "--connect", where, "-a", user, "-p", password
                )
                assert done.returncode == 0, (user, proto, done.stdout, done.stderr)
                assert "server trusted" in done.stderr + done.stdout
        done = await asyncio.to_thread(gsasl, "--imap", "--connect", imap, "-a", "ann", "-p", "no")
        assert done.returncode != 0
        assert "AUTHENTICATIONFAILED" in done.stdout + done.stderr


async def test_user_add_scram_then_doveadm_and_a_scram_login(
    make_server: Any, tmp_path: Path
) -> None:
    """`mailsrv user add --scheme SCRAM-SHA-256` writes what doveadm verifies and SCRAM uses."""
    users_file = tmp_path / "users"
    added = await asyncio.to_thread(
        subprocess.run,
        [
            *(sys.executable, "-m", "mailsrv", "user", "add", "gil", "--password-stdin"),
            *("--scheme", "scram-sha-256", "--users", str(users_file)),
        ],
        input="gil pw\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert added.returncode == 0 and "(SCRAM-SHA-256)" in added.stdout, added.stderr
    stored = users_file.read_text().strip().partition(":")[2]
    assert stored.startswith("{SCRAM-SHA-256}4096,")
    if DOVEADM.exists():
        verified = await asyncio.to_thread(
            subprocess.run,
            [str(DOVEADM), "pw", "-t", stored, "-p", "gil pw"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verified.returncode == 0 and "(verified)" in verified.stdout, verified.stderr
    async with make_server(services={"imap"}, dev=False) as server:
        typ, _, trusted = await asyncio.to_thread(imap_scram, server.ports.imap, "gil", "gil pw")
        assert (typ, trusted) == ("OK", True)


@pytest.mark.mail_server(users={"alice": "s3cret"}, dev=False)
def test_the_fixture_offers_scram_for_its_users(mail_server: Any) -> None:
    """What a test author gets: SCRAM-SHA-256 for the fixture's users, without any setup."""
    typ, _, trusted = imap_scram(mail_server.ports.imap, "alice", "s3cret")
    assert (typ, trusted) == ("OK", True)
    typ, _, _ = imap_scram(mail_server.ports.imap, "alice", "wrong")
    assert typ == "NO"


def test_the_fixture_takes_any_bearer_token_in_dev_mode(mail_server: Any) -> None:
    typ, _ = imap_bearer(mail_server.ports.imap, "XOAUTH2", xoauth2("zed@localhost", "t0ken"))
    assert typ == "OK"
