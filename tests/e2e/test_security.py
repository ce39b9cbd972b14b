"""Security over real sockets: names never leave the Maildir root, users never see each other's
mail, passwords never reach logs or transcripts, failed logins reveal nothing, TLS 1.2+ only,
no open relay, and the plaintext-login policy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from mailsrv.server import MailServer
from tests.e2e.netclient import Conn, close_all
from tests.e2e.test_limits import limits

pytestmark = pytest.mark.timeout(60)

PASSWORD = "S3cr3t-Pw!x"
WRONG = "Wr0ng-Pw!y"
ANN_MSG = b"From: a@example.org\r\nSubject: for ann\r\n\r\nann only\r\n"
BOB_MSG = b"From: a@example.org\r\nSubject: for bob\r\n\r\nBOB-PRIVATE-BODY\r\n"


@pytest.fixture(autouse=True)
async def close_connections() -> AsyncIterator[None]:
    yield
    await close_all()


@contextlib.asynccontextmanager
async def serve(make_server: Any, services: set[str], **kw: Any) -> AsyncIterator[MailServer]:
    """Users ann and bob (password PASSWORD), one message each."""
    kw.setdefault("limits", limits())
    async with make_server(services=services, **kw) as server:
        for user, msg in (("ann", ANN_MSG), ("bob", BOB_MSG)):
            server.context.auth.add_user(user, PASSWORD)
            await server.store.ensure_user(user)
            await server.store.deliver(user, msg)
        yield server


def tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def assert_only_under(before: set[Path], after: set[Path], allowed: Path) -> None:
    new = {p for p in after - before if "tmp" not in p.parts[-2:]}
    outside = [p for p in new if allowed != p and allowed not in p.parents]
    assert not outside, f"created outside {allowed}: {sorted(outside)[:5]}"


def b64(data: str | bytes) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


def lit(data: bytes) -> bytes:
    """A non-synchronizing literal (LITERAL+)."""
    return b"{%d+}\r\n%s" % (len(data), data)


# -- names never leave the user's root --------------------------------------------------------

HOSTILE_FOLDERS = [
    b'".."',
    b'"../bob"',
    b'"../../etc"',
    b'"~bob"',
    b'"/etc/passwd"',
    b'"a/../../bob"',
    b'"INBOX/.."',
    b'"."',
    b'"&AC4ALg-"',  # modified UTF-7 for ".."
    b'"&AC4ALg-/&AC4ALg-/bob"',
    b'"a&AC4-b"',  # a "." hidden in mUTF-7
    b'"&AFwALgAu-"',  # "\.."
    b'"a\\\\b"',
    lit(b"a\x00b"),
    lit(b"\xff\xfe\xfd"),
    b'"' + b"x" * 300 + b'"',
    b'"' + b"a/" * 30 + b'b"',
]


async def imap_login(port: int, user: str = "ann", password: str = PASSWORD) -> Conn:
    c = await Conn.open(port)
    assert (await c.line()).startswith(b"* OK")
    await c.send(b"L LOGIN %s %s\r\n" % (user.encode(), password.encode()))
    assert (await c.until(b"L "))[-1].startswith(b"L OK")
    return c


async def imap_cmd(c: Conn, tag: bytes, rest: bytes) -> bytes:
    await c.send(tag + b" " + rest + b"\r\n")
    return b"".join(await c.until(tag + b" "))


async def test_imap_folder_names_never_leave_the_root(make_server: Any, tmp_path: Path) -> None:
    async with serve(make_server, {"imap"}) as s:
        before = tree(tmp_path)
        bob_before = tree(tmp_path / "mail" / "bob")
        c = await imap_login(s.ports.imap)  # type: ignore[arg-type]
        await imap_cmd(c, b"p", b"CREATE Safe")
        for i, name in enumerate(HOSTILE_FOLDERS):
            for verb in (b"CREATE %s", b"SELECT %s", b"RENAME Safe %s", b"DELETE %s"):
                tag = b"t%d" % i
                reply = await imap_cmd(c, tag, verb % name)
                last = reply.splitlines()[-1]
                assert last.startswith((tag + b" NO", tag + b" BAD")), (verb % name, last)
            msg = b"Subject: x\r\n\r\ny\r\n"
            reply = await imap_cmd(c, b"ap", b"APPEND " + name + b" " + lit(msg))
            assert not reply.splitlines()[-1].startswith(b"ap OK"), (name, reply)
        after = tree(tmp_path)
        assert_only_under(before, after, tmp_path / "mail" / "ann")
        assert tree(tmp_path / "mail" / "bob") == bob_before


async def test_pop3_user_names_never_leave_the_root(make_server: Any, tmp_path: Path) -> None:
    async with serve(make_server, {"pop3"}) as s:  # dev mode: a login creates its mailbox
        before = tree(tmp_path)
        for name in (b"../bob", b"..", b"bob/../eve", b"~bob", b"/tmp/x", b".hidden", b"a" * 200):
            c = await Conn.open(s.ports.pop3)  # type: ignore[arg-type]
            await c.line()
            await c.send(b"USER " + name + b"\r\nPASS x\r\n")
            replies = [await c.line(), await c.line()]
            assert replies[-1].startswith(b"-ERR"), (name, replies)
            await c.close()
        assert tree(tmp_path) == before


async def test_smtp_recipients_never_leave_the_root(make_server: Any, tmp_path: Path) -> None:
    async with serve(make_server, {"smtp"}) as s:  # dev mode: catch-all delivery
        before = tree(tmp_path)
        c = await Conn.open(s.ports.smtp)  # type: ignore[arg-type]
        await c.line()
        await c.send(b"EHLO me\r\nMAIL FROM:<a@example.org>\r\n")
        await c.until(b"250 ")
        assert (await c.line()).startswith(b"250")
        for rcpt in (
            b"../bob@localhost",
            b'"../bob"@localhost',
            b"bob/../eve@localhost",
            b"..@localhost",
            b"%2e%2e@localhost",
            b"~bob@localhost",
            b".hidden@localhost",
            b"a\\b@localhost",
        ):
            await c.send(b"RCPT TO:<" + rcpt + b">\r\n")
            reply = await c.line()
            assert reply[:1] == b"5", (rcpt, reply)
        assert tree(tmp_path) == before


async def test_web_api_paths_never_leave_the_root(make_server: Any, tmp_path: Path) -> None:
    async with serve(make_server, {"http"}) as s:
        before = tree(tmp_path)
        base = f"http://127.0.0.1:{s.ports.http}/api/v1"
        hostile = ["..%2Fbob", "%2E%2E", "..", "~bob", "%00", "bob%2F..%2F..", "%C0%AE%C0%AE"]
        async with aiohttp.ClientSession() as http:
            for name in hostile:
                for path in (
                    f"/users/{name}/folders",
                    f"/users/ann/folders/{name}/messages",
                    f"/users/{name}/folders/INBOX/messages",
                    f"/users/{name}/maildir",
                ):
                    url = URL(base + path, encoded=True)
                    async with http.get(url) as resp:
                        body = await resp.read()
                        assert resp.status >= 400, (path, resp.status)
                        assert b"BOB-PRIVATE-BODY" not in body
                    async with http.post(url, data=b"Subject: x\r\n\r\ny\r\n") as resp:
                        assert resp.status >= 400, (path, resp.status)
            async with http.post(base + "/users", json={"name": "../eve", "password": "x"}) as r:
                assert r.status == 400
        assert_only_under(before, tree(tmp_path), tmp_path / "mail" / "ann")


@pytest.mark.parametrize(
    ("to", "folder"),
    [("../bob", "INBOX"), ("..", "INBOX"), ("ann", "../../bob"), ("ann", "a/../.."), ("a/b", "X")],
)
def test_cli_deliver_never_leaves_the_root(tmp_path: Path, to: str, folder: str) -> None:
    maildir = tmp_path / "mail"
    (maildir / "ann").mkdir(parents=True)
    before = tree(tmp_path)
    proc = _deliver(maildir, to, folder)
    assert proc.returncode != 0
    assert b"Traceback" not in proc.stderr
    assert tree(tmp_path) == before


def test_cli_deliver_folder_names_are_unicode_not_wire_form(tmp_path: Path) -> None:
    """``--folder`` is a folder name, not IMAP's wire form: "&AC4ALg-" is a literal name, kept
    inside the root as its own modified UTF-7 ("&-AC4ALg-"), never decoded to ".."."""
    maildir = tmp_path / "mail"
    (maildir / "ann").mkdir(parents=True)
    before = tree(tmp_path)
    assert _deliver(maildir, "ann", "&AC4ALg-").returncode == 0
    assert (maildir / "ann" / ".&-AC4ALg-" / "new").is_dir()
    assert_only_under(before, tree(tmp_path), maildir / "ann")


def _deliver(maildir: Path, to: str, folder: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "mailsrv", "deliver", "--to", to, "--folder", folder]
    return subprocess.run(
        [*cmd, "--maildir", str(maildir), "-"],
        input=b"Subject: x\r\n\r\ny\r\n",
        capture_output=True,
        timeout=30,
        check=False,
    )


# -- users never see each other's mail --------------------------------------------------------


async def test_imap_user_cannot_reach_another_users_folders(make_server: Any) -> None:
    async with serve(make_server, {"imap"}) as s:
        c = await imap_login(s.ports.imap)  # type: ignore[arg-type]
        for i, name in enumerate(
            [b'"../bob"', b'"~bob"', b'"#shared/bob"', b'"#user/bob"', b'"/bob"', b"bob",
             b'"Other Users/bob"', b'"../bob/INBOX"', b'"&AC4ALg-/bob"']
        ):  # fmt: skip
            for verb in (b"SELECT", b"EXAMINE", b"STATUS"):
                arg = name + (b" (MESSAGES)" if verb == b"STATUS" else b"")
                reply = await imap_cmd(c, b"x%d" % i, verb + b" " + arg)
                assert reply.splitlines()[-1].split()[1] in (b"NO", b"BAD"), (verb, name, reply)
        for ref, pattern in ((b'""', b"*"), (b'"../"', b"*"), (b'"~bob/"', b"*"), (b'""', b"../*")):
            reply = await imap_cmd(c, b"l", b"LIST " + ref + b" " + pattern)
            assert b"bob" not in reply.lower()
        reply = await imap_cmd(c, b"s", b"SELECT INBOX")
        reply += await imap_cmd(c, b"f", b"FETCH 1:* BODY.PEEK[]")
        assert b"ann only" in reply and b"BOB-PRIVATE-BODY" not in reply


async def test_pop3_user_sees_only_own_mail(make_server: Any) -> None:
    async with serve(make_server, {"pop3"}) as s:
        c = await Conn.open(s.ports.pop3)  # type: ignore[arg-type]
        await c.line()
        await c.send(b"USER ann\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nRETR 2\r\n" % PASSWORD.encode())
        assert await c.line() == b"+OK\r\n"
        assert (await c.line()).startswith(b"+OK ann has 1 messages")
        assert (await c.line()).startswith(b"+OK 1 ")
        body = b"".join(await c.until(b".\r\n"))
        assert b"ann only" in body and b"BOB" not in body
        assert (await c.line()).startswith(b"-ERR")


# -- passwords never in logs or transcripts ---------------------------------------------------


def _secret_forms(password: str, user: str = "ann") -> list[bytes]:
    pw = password.encode()
    forms = [pw, b64(pw), b64(b"\0" + user.encode() + b"\0" + pw)]
    forms += [b64(b"ann\0ann\0" + pw)]
    return forms


def _assert_no_secret(server: MailServer, caplog: pytest.LogCaptureFixture, password: str) -> None:
    logged = caplog.text.encode()
    lines = "\n".join(line.text for line in server.context.tracer.lines).encode()
    assert lines, "the transcript was empty: nothing to check"
    for form in _secret_forms(password):
        assert form not in logged, f"{form!r} in the log"
        assert form not in lines, f"{form!r} in the transcript"


POP3_METHODS = ["user-pass", "apop", "auth-plain-ir", "auth-plain", "auth-login"]


async def _pop3_auth(c: Conn, method: str, password: str) -> bytes:
    greeting = await c.line()
    pw = password.encode()
    if method == "user-pass":
        await c.send(b"USER ann\r\nPASS " + pw + b"\r\n")
        await c.line()
    elif method == "apop":
        stamp = re.search(rb"<[^>]+>", greeting)
        assert stamp is not None
        digest = hashlib.md5(stamp.group(0) + pw, usedforsecurity=False).hexdigest().encode()
        await c.send(b"APOP ann " + digest + b"\r\n")
    elif method == "auth-plain-ir":
        await c.send(b"AUTH PLAIN " + b64(b"\0ann\0" + pw) + b"\r\n")
    elif method == "auth-plain":
        await c.send(b"AUTH PLAIN\r\n")
        assert (await c.line()).startswith(b"+")
        await c.send(b64(b"\0ann\0" + pw) + b"\r\n")
    else:
        await c.send(b"AUTH LOGIN\r\n")
        await c.line()
        await c.send(b64(b"ann") + b"\r\n")
        await c.line()
        await c.send(b64(pw) + b"\r\n")
    return await c.line()


@pytest.mark.parametrize("method", POP3_METHODS)
async def test_pop3_passwords_never_logged(
    make_server: Any, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(make_server, {"pop3"}, dev=False) as s:
        for password, ok in ((PASSWORD, True), (WRONG, False)):
            c = await Conn.open(s.ports.pop3)  # type: ignore[arg-type]
            reply = await _pop3_auth(c, method, password)
            assert reply.startswith(b"+OK" if ok else b"-ERR"), reply
            await c.close()
        _assert_no_secret(s, caplog, PASSWORD)
        _assert_no_secret(s, caplog, WRONG)


IMAP_METHODS = ["login-atom", "login-quoted", "login-literal", "plain-ir", "plain", "login-sasl"]


async def _imap_auth(c: Conn, method: str, password: str) -> bytes:
    await c.line()
    pw = password.encode()
    if method == "login-atom":
        await c.send(b"a LOGIN ann " + pw + b"\r\n")
    elif method == "login-quoted":
        await c.send(b'a LOGIN "ann" "' + pw + b'"\r\n')
    elif method == "login-literal":
        await c.send(b"a LOGIN {3}\r\n")
        assert (await c.line()).startswith(b"+")
        await c.send(b"ann {%d}\r\n" % len(pw))
        assert (await c.line()).startswith(b"+")
        await c.send(pw + b"\r\n")
    elif method == "plain-ir":
        await c.send(b"a AUTHENTICATE PLAIN " + b64(b"\0ann\0" + pw) + b"\r\n")
    elif method == "plain":
        await c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert (await c.line()).startswith(b"+")
        await c.send(b64(b"\0ann\0" + pw) + b"\r\n")
    else:
        await c.send(b"a AUTHENTICATE LOGIN\r\n")
        await c.line()
        await c.send(b64(b"ann") + b"\r\n")
        await c.line()
        await c.send(b64(pw) + b"\r\n")
    return (await c.until(b"a "))[-1]


@pytest.mark.parametrize("method", IMAP_METHODS)
async def test_imap_passwords_never_logged(
    make_server: Any, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(make_server, {"imap"}, dev=False) as s:
        for password, ok in ((PASSWORD, True), (WRONG, False)):
            c = await Conn.open(s.ports.imap)  # type: ignore[arg-type]
            reply = await _imap_auth(c, method, password)
            assert reply.startswith(b"a OK" if ok else b"a NO"), reply
            await c.close()
        _assert_no_secret(s, caplog, PASSWORD)
        _assert_no_secret(s, caplog, WRONG)


SMTP_METHODS = ["plain-ir", "plain", "login"]


async def _smtp_auth(c: Conn, method: str, password: str, user: str = "ann") -> bytes:
    await c.line()
    await c.send(b"EHLO me\r\n")
    await c.until(b"250 ")
    pw, name = password.encode(), user.encode()
    if method == "plain-ir":
        await c.send(b"AUTH PLAIN " + b64(b"\0" + name + b"\0" + pw) + b"\r\n")
    elif method == "plain":
        await c.send(b"AUTH PLAIN\r\n")
        assert (await c.line()).startswith(b"334")
        await c.send(b64(b"\0" + name + b"\0" + pw) + b"\r\n")
    else:
        await c.send(b"AUTH LOGIN\r\n")
        assert (await c.line()).startswith(b"334")
        await c.send(b64(name) + b"\r\n")
        assert (await c.line()).startswith(b"334")
        await c.send(b64(pw) + b"\r\n")
    return await c.line()


@pytest.mark.parametrize("method", SMTP_METHODS)
async def test_smtp_passwords_never_logged(
    make_server: Any, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(make_server, {"submission"}, dev=False) as s:
        for password, ok in ((PASSWORD, True), (WRONG, False)):
            c = await Conn.open(s.ports.submission)  # type: ignore[arg-type]
            reply = await _smtp_auth(c, method, password)
            assert reply.startswith(b"235" if ok else b"535"), reply
            await c.close()
        _assert_no_secret(s, caplog, PASSWORD)
        _assert_no_secret(s, caplog, WRONG)


# -- failed logins say nothing about whether the user exists ----------------------------------


async def _timed(coro: Any) -> tuple[bytes, float]:
    start = time.monotonic()
    reply = await coro
    return reply, time.monotonic() - start


@pytest.mark.parametrize("protocol", ["pop3", "imap", "smtp"])
async def test_unknown_user_and_wrong_password_look_the_same(
    make_server: Any, protocol: str
) -> None:
    service = {"pop3": "pop3", "imap": "imap", "smtp": "submission"}[protocol]
    lim = limits(auth_failure_delay=0.2, auth_failures_per_connection=10)
    async with serve(make_server, {service}, dev=False, limits=lim) as s:
        port = getattr(s.ports, service)
        answers: list[tuple[bytes, ...]] = []
        for user in ("ann", "nosuchuser"):
            c = await Conn.open(port)
            if protocol == "pop3":
                await c.line()
                await c.send(b"USER %s\r\n" % user.encode())
                first = await c.line()
                await c.send(b"PASS %s\r\n" % WRONG.encode())
                reply, took = await _timed(c.line())
                answers.append((first, reply))
            elif protocol == "imap":
                await c.line()
                await c.send(b"a LOGIN %s %s\r\n" % (user.encode(), WRONG.encode()))
                reply, took = await _timed(c.line())
                answers.append((reply,))
            else:
                reply, took = await _timed(_smtp_auth(c, "plain-ir", WRONG, user))
                answers.append((reply,))
            assert took >= 0.2, (user, took)  # the failure delay applies to both
            await c.close()
        assert answers[0] == answers[1]


# -- TLS ---------------------------------------------------------------------------------------


def _client_ctx(certs_dir: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs_dir / "ca.pem"))
    ctx.minimum_version = ctx.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        with contextlib.suppress(ssl.SSLError):
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client try; the server must refuse
    return ctx


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("service", ["pop3s", "imaps", "smtps"])
async def test_tls_12_or_newer_only(make_server: Any, certs_dir: Path, service: str) -> None:
    async with serve(make_server, {service}) as s:
        port = getattr(s.ports, service)
        server_ctx = s.context.tls
        assert server_ctx is not None
        assert server_ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
        for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                _, w = await asyncio.open_connection(
                    "localhost", port, ssl=_client_ctx(certs_dir, old)
                )
                w.close()
        for good in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            reader, writer = await asyncio.open_connection(
                "localhost", port, ssl=_client_ctx(certs_dir, good)
            )
            cipher = writer.get_extra_info("cipher")
            assert cipher[1] in ("TLSv1.2", "TLSv1.3")
            assert "GCM" in cipher[0] or "CHACHA20" in cipher[0], cipher  # AEAD only
            assert await asyncio.wait_for(reader.readline(), 10)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def test_tls_server_offers_no_weak_ciphers(make_server: Any) -> None:
    async with serve(make_server, {"imaps"}) as s:
        assert s.context.tls is not None
        names = [c["name"] for c in s.context.tls.get_ciphers()]
        weak = [n for n in names if re.search(r"RC4|DES|MD5|NULL|EXPORT|anon|CBC|SHA$", n)]
        assert not weak, weak


# -- not an open relay -------------------------------------------------------------------------


async def test_smtp_is_not_an_open_relay(make_server: Any) -> None:
    async with serve(make_server, {"smtp", "submission"}, dev=False) as s:
        c = await Conn.open(s.ports.smtp)  # type: ignore[arg-type]
        await c.line()
        await c.send(b"EHLO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@evil.example>\r\n")
        await c.until(b"250 ")
        assert (await c.line()).startswith(b"250")
        assert (await c.line()).startswith(b"550 5.7.1")
        # Authenticated submission does not relay either: mailsrv only delivers locally.
        sub = await Conn.open(s.ports.submission)  # type: ignore[arg-type]
        assert (await _smtp_auth(sub, "plain-ir", PASSWORD)).startswith(b"235")
        await sub.send(b"MAIL FROM:<ann@localhost>\r\nRCPT TO:<x@evil.example>\r\n")
        assert (await sub.line()).startswith(b"250")
        assert (await sub.line()).startswith(b"550 5.7.1")
        await sub.send(b"RCPT TO:<bob@localhost>\r\n")
        assert (await sub.line()).startswith(b"250")


# -- plaintext login policy ---------------------------------------------------------------------


@pytest.fixture
def not_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make 127.0.0.1 count as a remote address for the plaintext policy.

    The config has no switch for the loopback exemption, so the only way to see the policy
    for remote peers over real sockets is to replace ``is_loopback`` where auth uses it.
    """
    monkeypatch.setattr("mailsrv.auth.is_loopback", lambda peer: False)


async def test_plaintext_refused_without_tls_for_remote_peers(
    make_server: Any, not_loopback: None
) -> None:
    services = {"pop3", "imap", "submission"}
    async with serve(make_server, services, dev=False, allow_plaintext_auth=False) as s:
        p = await Conn.open(s.ports.pop3)  # type: ignore[arg-type]
        await p.line()
        await p.send(b"CAPA\r\n")
        capa = b"".join(await p.until(b".\r\n"))
        assert b"USER\r\n" not in capa and b"SASL" not in capa and b"STLS" in capa
        await p.send(b"USER ann\r\n")
        assert (await p.line()).startswith(b"-ERR [AUTH]")
        await p.send(b"AUTH PLAIN " + b64("\0ann\0" + PASSWORD) + b"\r\n")
        assert (await p.line()).startswith(b"-ERR [AUTH]")

        i = await Conn.open(s.ports.imap)  # type: ignore[arg-type]
        greeting = await i.line()
        assert b"LOGINDISABLED" in greeting and b"STARTTLS" in greeting
        await i.send(b"a LOGIN ann %s\r\n" % PASSWORD.encode())
        assert (await i.line()).startswith(b"a NO [PRIVACYREQUIRED]")
        await i.send(b"b AUTHENTICATE PLAIN " + b64("\0ann\0" + PASSWORD) + b"\r\n")
        assert (await i.line()).startswith(b"b NO [PRIVACYREQUIRED]")

        m = await Conn.open(s.ports.submission)  # type: ignore[arg-type]
        await m.line()
        await m.send(b"EHLO me\r\n")
        ehlo = b"".join(await m.until(b"250 "))
        assert b"AUTH" not in ehlo and b"STARTTLS" in ehlo
        await m.send(b"AUTH PLAIN " + b64("\0ann\0" + PASSWORD) + b"\r\n")
        assert (await m.line()).startswith(b"538 ")


async def test_plaintext_allowed_after_stls(
    make_server: Any, certs_dir: Path, not_loopback: None
) -> None:
    async with serve(make_server, {"pop3"}, dev=False, allow_plaintext_auth=False) as s:
        reader, writer = await asyncio.open_connection("localhost", s.ports.pop3)
        await reader.readline()
        writer.write(b"STLS\r\n")
        assert (await reader.readline()).startswith(b"+OK")
        ctx = ssl.create_default_context(cafile=str(certs_dir / "ca.pem"))
        await writer.start_tls(ctx, server_hostname="localhost")
        writer.write(b"USER ann\r\nPASS %s\r\n" % PASSWORD.encode())
        assert await reader.readline() == b"+OK\r\n"
        assert (await reader.readline()).startswith(b"+OK ann has")
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
