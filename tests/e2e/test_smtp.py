"""SMTP ingress end to end: smtplib over loopback against the real listeners."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from base64 import b64encode
from email.message import EmailMessage

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from mailsrv.store.memory import MemoryStore
from mailsrv.tls import client_ssl_context

SERVICES = {"smtp", "submission", "smtps"}
HOST = "localhost"


@pytest.fixture(params=["memory", "maildir"])
def store(request):
    """Each test runs over the in-memory store and the real Maildir store (None: the default)."""
    return MemoryStore() if request.param == "memory" else None


def message(to: str = "alice@localhost", body: str = "Hello Alice.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "bob@example.org"
    msg["To"] = to
    msg["Subject"] = "greetings"
    msg.set_content(body)
    return msg


async def inbox(server: MailServer, user: str) -> list[bytes]:
    if not await server.store.user_exists(user):
        return []
    mbox = await server.store.open(user)
    snap = await mbox.snapshot()
    return [await mbox.read(m.uid) for m in snap.messages]


def _send(
    port: int, msg: EmailMessage, to: list[str] | None = None
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(HOST, port, timeout=10) as client:
        return client.send_message(msg, to_addrs=to)


async def test_delivery_lands_with_received_header(make_server, store):
    async with make_server(services=SERVICES, store=store) as server:
        refused = await asyncio.to_thread(_send, server.ports.smtp, message())
        assert refused == {}
        [data] = await inbox(server, "alice")
    assert data.startswith(b"Received: from ")
    received = data.split(b"\r\n\r\n", 1)[0]
    assert b"by localhost (mailsrv) with ESMTP id " in received
    assert b"for <alice@localhost>;" in received
    assert b"Subject: greetings\r\n" in data
    assert data.endswith(b"Hello Alice.\r\n")


async def test_dot_stuffing_and_several_recipients(make_server, store):
    async with make_server(services=SERVICES, store=store) as server:
        msg = message(body="line one\n.leading dot\n..two dots\n")
        to = ["alice@localhost", "carol@localhost", "alice@localhost"]
        await asyncio.to_thread(_send, server.ports.smtp, msg, to)
        alice, carol = await inbox(server, "alice"), await inbox(server, "carol")
    assert len(alice) == 1, "a duplicate recipient gets one copy"
    assert len(carol) == 1
    assert b"\r\n.leading dot\r\n..two dots\r\n" in alice[0]


async def test_long_lines_are_accepted_whole(make_server, store):
    long_line = b"<p>" + b"y" * 5000 + b"</p>"
    raw = b"Subject: html\r\nContent-Type: text/html\r\n\r\n" + long_line + b"\r\n"
    async with make_server(services={"smtp"}, store=store) as server:

        def talk() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP(HOST, server.ports.smtp, timeout=10) as c:
                return c.sendmail("bob@example.org", ["alice@localhost"], raw)

        assert await asyncio.to_thread(talk) == {}
        [data] = await inbox(server, "alice")
    assert data.endswith(b"\r\n\r\n" + long_line + b"\r\n")


async def test_dev_mode_is_catch_all_for_any_domain(make_server, store):
    async with make_server(services={"smtp"}, store=store) as server:
        await asyncio.to_thread(_send, server.ports.smtp, message("dave@anywhere.example"))
        assert len(await inbox(server, "dave")) == 1


async def test_unknown_user_and_relay_refused_when_not_dev(make_server, store):
    async with make_server(services={"smtp"}, store=store, dev=False) as server:
        server.context.auth.add_user("alice", "pw")

        def talk() -> tuple[tuple[int, bytes], ...]:
            with smtplib.SMTP(HOST, server.ports.smtp, timeout=10) as c:
                c.ehlo("client.test")
                c.mail("bob@example.org")
                return (
                    c.rcpt("nobody@localhost"),
                    c.rcpt("alice@elsewhere.example"),
                    c.rcpt("bad/name@localhost"),
                    c.rcpt("alice@localhost"),
                    c.rcpt("Alice@LOCALHOST"),
                )

        unknown, relay, bad, ok, ok_case = await asyncio.to_thread(talk)
    assert unknown[0] == 550 and b"5.1.1" in unknown[1]
    assert relay[0] == 550 and b"5.7.1" in relay[1] and b"Relaying denied" in relay[1]
    assert bad[0] == 550
    assert ok[0] == 250
    assert ok_case[0] == 250


async def test_size_is_advertised_and_enforced(make_server, store):
    limits = Limits(auth_failure_delay=0.0, message_size=2000)
    async with make_server(services={"smtp"}, store=store, limits=limits) as server:

        def talk() -> tuple[str | None, tuple[int, bytes], int]:
            with smtplib.SMTP(HOST, server.ports.smtp, timeout=10) as c:
                c.ehlo("client.test")
                size = c.esmtp_features.get("size")
                declared = c.mail("bob@example.org", ["SIZE=5000"])
                c.rset()
                c.mail("bob@example.org")  # no SIZE declared: the data itself is too big
                c.rcpt("alice@localhost")
                code, _ = c.data(b"x" * 900 + b"\r\n" * 600)
                return size, declared, code

        size, declared, data_code = await asyncio.to_thread(talk)
        assert await inbox(server, "alice") == []
    assert size == "2000"
    assert declared[0] == 552
    assert data_code == 552


def _submission(port: int, mech: str, tls: ssl.SSLContext | None, implicit: bool = False) -> None:
    cls = smtplib.SMTP_SSL if implicit else smtplib.SMTP
    kwargs = {"context": tls} if implicit else {}
    with cls(HOST, port, timeout=10, **kwargs) as c:
        if tls is not None and not implicit:
            c.starttls(context=tls)
        c.ehlo("client.test")
        c.user, c.password = "alice", "secret"
        c.auth(mech, getattr(c, f"auth_{mech.lower()}"))
        c.send_message(message("bob@localhost"))


async def test_submission_requires_auth(make_server, store):
    async with make_server(services=SERVICES, store=store) as server:

        def talk() -> tuple[tuple[int, bytes], str]:
            with smtplib.SMTP(HOST, server.ports.submission, timeout=10) as c:
                c.ehlo("client.test")
                return c.mail("alice@localhost"), c.esmtp_features.get("auth", "")

        refused, mechs = await asyncio.to_thread(talk)
    assert refused[0] == 530
    # Dev mode: any bearer token works; no user has a SCRAM secret, so no SCRAM-SHA-256.
    assert set(mechs.split()) == {"LOGIN", "PLAIN", "OAUTHBEARER", "XOAUTH2"}


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
async def test_submission_accepts_plain_and_login(make_server, store, mech):
    async with make_server(services=SERVICES, store=store, dev=False) as server:
        server.context.auth.add_user("alice", "secret")
        server.context.auth.add_user("bob", "pw")
        await asyncio.to_thread(_submission, server.ports.submission, mech, None)
        [data] = await inbox(server, "bob")
        lines = server.context.tracer.lines
    assert b" with ESMTPA id " in data
    secrets = ("secret", b64encode(b"secret").decode(), b64encode(b"\0alice\0secret").decode())
    texts = [line.text for line in lines]
    assert not any(s in t for s in secrets for t in texts), "the password never reaches a trace"
    assert f"AUTH {mech} ***" in texts
    assert any(line.direction == "*" and line.text == "authenticated as alice" for line in lines)


async def test_bad_password_is_refused(make_server, store):
    async with make_server(services={"submission"}, store=store, dev=False) as server:
        server.context.auth.add_user("alice", "right")

        def talk() -> int:
            with smtplib.SMTP(HOST, server.ports.submission, timeout=10) as c:
                c.ehlo("client.test")
                with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
                    c.login("alice", "wrong")
                return exc.value.smtp_code

        assert await asyncio.to_thread(talk) == 535


async def test_starttls_on_smtp_and_submission(make_server, store, certs_dir):
    tls = client_ssl_context(certs_dir / "ca.pem")
    async with make_server(services=SERVICES, store=store) as server:

        def on_25() -> str:
            with smtplib.SMTP(HOST, server.ports.smtp, timeout=10) as c:
                c.starttls(context=tls)
                c.send_message(message())
                sock = c.sock
                assert isinstance(sock, ssl.SSLSocket)
                return sock.version() or ""

        version = await asyncio.to_thread(on_25)
        await asyncio.to_thread(_submission, server.ports.submission, "PLAIN", tls)
        alice, bob = await inbox(server, "alice"), await inbox(server, "bob")
    assert version in ("TLSv1.2", "TLSv1.3")
    assert b" with ESMTPS id " in alice[0]
    assert b" with ESMTPSA id " in bob[0]


async def test_smtps_implicit_tls_verified_against_our_ca(make_server, store, certs_dir):
    tls = client_ssl_context(certs_dir / "ca.pem")
    async with make_server(services=SERVICES, store=store) as server:
        await asyncio.to_thread(_submission, server.ports.smtps, "LOGIN", tls, True)
        [data] = await inbox(server, "bob")
    assert b" with ESMTPSA id " in data


async def test_smtps_rejects_a_client_that_does_not_trust_the_ca(make_server, store):
    async with make_server(services={"smtps"}, store=store) as server:
        untrusting = ssl.create_default_context()  # system roots only: our CA is not among them

        def talk() -> None:
            with smtplib.SMTP_SSL(HOST, server.ports.smtps, timeout=10, context=untrusting):
                pass

        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.to_thread(talk)


async def test_sessions_trace_and_faults(make_server, store):
    async with make_server(services={"smtp"}, store=store) as server:
        ctx = server.context
        ctx.faults.fail("smtp", "MAIL", "451 4.3.0 try again later")

        def talk() -> tuple[tuple[int, bytes], tuple[int, bytes], int]:
            with smtplib.SMTP(HOST, server.ports.smtp, timeout=10) as c:
                c.ehlo("client.test")
                live = len(ctx.sessions.live)
                failed = c.mail("bob@example.org")
                ok = c.mail("bob@example.org")
                return failed, ok, live

        failed, ok, live = await asyncio.to_thread(talk)
        await asyncio.sleep(0.05)
        assert ctx.sessions.live == {}
    assert live == 1
    assert failed == (451, b"4.3.0 try again later")
    assert ok[0] == 250
    texts = [(line.direction, line.text) for line in ctx.tracer.lines]
    assert ("C", "EHLO client.test") in texts
    assert any(d == "S" and t.startswith("220 localhost") for d, t in texts)
    assert any(d == "*" and t.startswith("connect from 127.0.0.1") for d, t in texts)


async def test_drop_fault_closes_the_connection(make_server, store):
    async with make_server(services={"smtp"}, store=store) as server:
        server.context.faults.drop("smtp", "DATA")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            await asyncio.to_thread(_send, server.ports.smtp, message())
        assert await inbox(server, "alice") == []


async def test_shutdown_says_421_to_open_sessions(make_server, store):
    async with make_server(services={"smtp"}, store=store) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.smtp)
        assert (await reader.readline()).startswith(b"220 ")
        await server.stop()
        assert (await reader.readline()).startswith(b"421 4.3.2")
        assert await reader.read() == b""
        writer.close()


async def test_errors_never_leak_exception_text(make_server):
    store = MemoryStore()

    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    store.deliver = broken  # type: ignore[method-assign]
    async with make_server(services={"smtp"}, store=store) as server:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            await asyncio.to_thread(_send, server.ports.smtp, message())
    assert exc.value.smtp_code == 451
    assert b"secret" not in exc.value.smtp_error
