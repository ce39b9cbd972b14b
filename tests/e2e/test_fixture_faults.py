"""Fault injection as real clients see it: imaplib, poplib and smtplib against the fixture."""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
import time

import pytest

from mailsrv.testing import AsyncMailServer, ThreadedMailServer

MESSAGE = "From: bob@example.com\nTo: alice@localhost\nSubject: Hello\n\n" + "line\n" * 10


def imap_login(server: ThreadedMailServer | AsyncMailServer) -> imaplib.IMAP4:
    assert server.ports.imap is not None
    client = imaplib.IMAP4(server.host, server.ports.imap, timeout=10)
    try:
        client.login("alice", "pw")
    except BaseException:
        client.shutdown()
        raise
    return client


def pop3_login(server: ThreadedMailServer) -> poplib.POP3:
    assert server.ports.pop3 is not None
    client = poplib.POP3(server.host, server.ports.pop3, timeout=10)
    try:
        client.user("alice")
        client.pass_("pw")
    except BaseException:
        client.close()
        raise
    return client


def smtp(server: ThreadedMailServer) -> smtplib.SMTP:
    assert server.ports.smtp is not None
    return smtplib.SMTP(server.host, server.ports.smtp, timeout=10)


# -- IMAP ---------------------------------------------------------------------------------------


@pytest.mark.mail_server(services={"imap"})
def test_imap_fetch_gets_the_chosen_no(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    fault = mail_server.faults.fail("imap", "FETCH", "NO [UNAVAILABLE] try later", times=1)
    client = imap_login(mail_server)
    try:
        client.select("INBOX")
        typ, data = client.fetch("1", "(FLAGS)")
        assert (typ, data) == ("NO", [b"[UNAVAILABLE] try later"])
        typ, data = client.fetch("1", "(RFC822.SIZE)")  # times=1: the next one works
        assert typ == "OK" and isinstance(data[0], bytes) and b"RFC822.SIZE" in data[0]
        assert fault.hits == 1 and mail_server.faults.active == []
    finally:
        client.logout()
    assert "NO [UNAVAILABLE] try later" in mail_server.transcript_text()


@pytest.mark.mail_server(services={"imap"})
def test_imap_uid_fetch_and_forever(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    mail_server.faults.fail("imap", "UID FETCH", "BAD injected", times=None)
    client = imap_login(mail_server)
    try:
        client.select("INBOX")
        for _ in range(3):
            with pytest.raises(imaplib.IMAP4.error, match="injected"):
                client.uid("FETCH", "1", "(FLAGS)")
        assert client.fetch("1", "(FLAGS)")[0] == "OK"  # plain FETCH is another command
    finally:
        client.logout()


@pytest.mark.mail_server(services={"imap"})
def test_imap_drop_halfway_through_a_fetch(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    mail_server.faults.drop("imap", "FETCH", after_bytes=20)
    client = imap_login(mail_server)
    client.select("INBOX")
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.fetch("1", "(BODY[])")
    client.shutdown()
    client = imap_login(mail_server)  # the server itself is fine
    try:
        client.select("INBOX")
        typ, data = client.fetch("1", "(BODY[])")
        assert typ == "OK" and isinstance(data[0], tuple) and b"Subject: Hello" in data[0][1]
    finally:
        client.logout()


@pytest.mark.mail_server(services={"imap"})
def test_imap_drop_at_login_and_delay(mail_server: ThreadedMailServer) -> None:
    mail_server.faults.drop("imap", "LOGIN")
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        imap_login(mail_server)
    fault = mail_server.faults.delay("imap", "NOOP", 0.3)
    client = imap_login(mail_server)
    try:
        started = time.monotonic()
        assert client.noop()[0] == "OK"
        assert time.monotonic() - started >= 0.3
        assert fault.hits == 1
    finally:
        client.logout()


# -- POP3 ---------------------------------------------------------------------------------------


@pytest.mark.mail_server(services={"pop3"})
def test_pop3_retr_dropped_halfway_raises_and_keeps_the_mail(
    mail_server: ThreadedMailServer,
) -> None:
    mail_server.deliver("alice", MESSAGE + ("x" * 70 + "\n") * 1000)
    mail_server.faults.drop("pop3", "RETR", after_bytes=1000)
    client = pop3_login(mail_server)
    client.dele(1)  # marked only: a dropped connection must expunge nothing
    client.rset()
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        client.retr(1)
    client.close()
    client = pop3_login(mail_server)
    try:
        assert client.stat()[0] == 1
        _, lines, _ = client.retr(1)
        assert b"Subject: Hello" in lines and len(b"\r\n".join(lines)) > 70_000
    finally:
        client.quit()


@pytest.mark.mail_server(services={"pop3"})
def test_pop3_fail_and_delay(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    mail_server.faults.fail("pop3", "RETR", "-ERR [SYS/TEMP] disk on fire")
    mail_server.faults.delay("pop3", "STAT", 0.3)
    client = pop3_login(mail_server)
    try:
        with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\] disk on fire"):
            client.retr(1)
        started = time.monotonic()
        assert client.stat() == (1, len(mail_server.messages("alice")[0].raw))
        assert time.monotonic() - started >= 0.3
        assert b"Subject: Hello" in client.retr(1)[1]
    finally:
        client.quit()


@pytest.mark.mail_server(services={"pop3"})
def test_pop3_drop_on_pass(mail_server: ThreadedMailServer) -> None:
    mail_server.faults.drop("pop3", "PASS")
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        pop3_login(mail_server)
    pop3_login(mail_server).quit()


# -- SMTP ---------------------------------------------------------------------------------------


@pytest.mark.mail_server(services={"smtp"})
def test_smtp_gets_the_chosen_codes(mail_server: ThreadedMailServer) -> None:
    faults = mail_server.faults
    faults.fail("smtp", "RCPT", "550 5.1.1 No such mailbox here")
    with smtp(mail_server) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("bob@example.com", ["alice@localhost"], MESSAGE)
        assert refused.value.recipients["alice@localhost"][0] == 550
        faults.fail("smtp", "MAIL", "451 4.3.0 Try again later")
        with pytest.raises(smtplib.SMTPSenderRefused) as sender:
            client.sendmail("bob@example.com", ["alice@localhost"], MESSAGE)
        assert sender.value.smtp_code == 451
        client.rset()
        faults.fail("smtp", "DATA", "452 4.3.1 Insufficient storage")
        with pytest.raises(smtplib.SMTPDataError) as data:
            client.sendmail("bob@example.com", ["alice@localhost"], MESSAGE)
        assert data.value.smtp_code == 452
        client.rset()
        client.sendmail("bob@example.com", ["alice@localhost"], MESSAGE)
    assert len(mail_server.wait_for_messages("alice", 1)) == 1


@pytest.mark.mail_server(services={"smtp"})
def test_smtp_drop_delivers_nothing(mail_server: ThreadedMailServer) -> None:
    mail_server.faults.drop("smtp", "DATA")
    with pytest.raises(smtplib.SMTPServerDisconnected), smtp(mail_server) as client:
        client.sendmail("bob@example.com", ["alice@localhost"], MESSAGE)
    assert mail_server.messages("alice") == []
    with smtp(mail_server) as client:
        client.sendmail("bob@example.com", ["alice@localhost"], MESSAGE)
    assert len(mail_server.wait_for_messages("alice", 1)) == 1


@pytest.mark.mail_server(services={"smtp"})
def test_smtp_delay_and_wildcard(mail_server: ThreadedMailServer) -> None:
    fault = mail_server.faults.delay("smtp", "*", 0.1, times=None)
    started = time.monotonic()
    with smtp(mail_server) as client:
        client.sendmail("bob@example.com", ["alice@localhost"], MESSAGE)
    assert time.monotonic() - started >= 0.3  # EHLO, MAIL, RCPT, DATA: each waited
    assert fault.hits >= 4
    mail_server.faults.remove(fault)
    assert mail_server.faults.active == []


# -- the async fixture --------------------------------------------------------------------------


@pytest.mark.mail_server(services={"imap"})
async def test_faults_on_the_async_fixture(mail_server_async: AsyncMailServer) -> None:
    await mail_server_async.deliver("alice", MESSAGE)
    mail_server_async.faults.fail("imap", "SELECT", "NO [UNAVAILABLE] maintenance")

    def select_twice() -> tuple[str, str]:
        client = imap_login(mail_server_async)
        try:
            return client.select("INBOX")[0], client.select("INBOX")[0]
        finally:
            client.logout()

    assert await asyncio.to_thread(select_twice) == ("NO", "OK")
