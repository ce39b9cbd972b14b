"""The test API (mailsrv.testing) through the plugin's fixtures, with real SMTP clients.

Every test runs over both stores (Maildir on disk and the in-memory one); only the SMTP listeners
are started, which is all these tests talk to.
"""

from __future__ import annotations

import asyncio
import importlib.util
import smtplib
import ssl
import statistics
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailsrv.server import PortInUse
from mailsrv.store.base import NoSuchUser
from mailsrv.testing import AsyncMailServer, MailTimeout, ThreadedMailServer

HAS_MAILDIR = importlib.util.find_spec("mailsrv.store.maildir") is not None
SMTP_ONLY = {"smtp", "submission", "smtps"}


@pytest.fixture(params=["maildir", "memory"])
def mail_server_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "maildir" and not HAS_MAILDIR:
        pytest.skip("the Maildir store is not there yet")
    return {"store": request.param, "services": SMTP_ONLY}


def mail(subject: str = "Hello", to: str = "alice@localhost", body: str = "hi there\n") -> str:
    return f"From: Bob <bob@example.com>\nTo: {to}\nSubject: {subject}\n\n{body}"


def send(server: ThreadedMailServer | AsyncMailServer, to: str, message: str) -> None:
    assert server.ports.smtp is not None
    with smtplib.SMTP(server.host, server.ports.smtp, timeout=10) as client:
        client.sendmail("bob@example.com", [to], message.replace("\n", "\r\n"))


# -- sync fixture -------------------------------------------------------------------------------


def test_ports_host_and_paths(mail_server: ThreadedMailServer) -> None:
    assert mail_server.host == "127.0.0.1"
    ports = mail_server.ports
    assert all(p and p > 1023 for p in (ports.smtp, ports.submission, ports.smtps))
    assert ports.imap is None and ports.pop3 is None and ports.http is None  # not asked for
    assert mail_server.ca_file.exists()
    assert mail_server.maildir.parent.exists()


def test_mail_sent_by_smtp_arrives(mail_server: ThreadedMailServer) -> None:
    send(mail_server, "alice@localhost", mail("Welcome"))
    [msg] = mail_server.wait_for_messages("alice", 1)
    assert msg.subject == "Welcome"
    assert msg.sender == "bob@example.com"
    assert msg.recipients == ["alice@localhost"]
    assert msg.text == "hi there\n"
    assert msg.raw.endswith(b"\r\nhi there\r\n") and msg.flags == frozenset()
    assert mail_server.messages("alice") == [msg]


def test_deliver_takes_bytes_str_and_email_message(mail_server: ThreadedMailServer) -> None:
    em = EmailMessage()
    em["From"] = "carol@example.com"
    em["Subject"] = "as object"
    em.set_content("body")
    uids = [
        mail_server.deliver("alice", b"Subject: as bytes\r\n\r\nx\r\n"),
        mail_server.deliver("alice", "Subject: as str, caf\u00e9\n\nx\n"),
        mail_server.deliver("alice", em, flags=["\\Seen", "$Forwarded"]),
    ]
    assert uids == sorted(uids) and len(set(uids)) == 3
    msgs = mail_server.messages("alice")
    assert [m.uid for m in msgs] == uids
    assert [m.subject for m in msgs] == ["as bytes", "as str, caf\u00e9", "as object"]
    assert msgs[2].flags == {"\\Seen", "$Forwarded"} and msgs[2].sender == "carol@example.com"
    assert all(b"\n" not in m.raw.replace(b"\r\n", b"") for m in msgs)  # stored with CRLF


def test_deliver_into_a_new_folder(mail_server: ThreadedMailServer) -> None:
    uid = mail_server.deliver("alice", mail("filed"), folder="Work/2024")
    assert "Work/2024" in mail_server.folders("alice")
    [msg] = mail_server.messages("alice", "Work/2024")
    assert (msg.uid, msg.folder, msg.subject) == (uid, "Work/2024", "filed")
    assert mail_server.messages("alice") == []


def test_folders_and_create_folder(mail_server: ThreadedMailServer) -> None:
    assert mail_server.folders("nobody") == []
    assert mail_server.messages("nobody") == []
    mail_server.create_folder("alice", "Projects")
    folders = mail_server.folders("alice")
    assert folders[0] == "INBOX"
    assert {"Sent", "Drafts", "Trash", "Junk", "Archive", "Projects"} <= set(folders)


@pytest.mark.mail_server(dev=False, users={"alice": "secret"})
def test_users_outside_dev_mode(mail_server: ThreadedMailServer) -> None:
    assert mail_server.folders("alice")[0] == "INBOX"  # configured users get a mailbox at once
    with pytest.raises(NoSuchUser, match="add_user"):
        mail_server.deliver("carol", mail())
    mail_server.add_user("carol", "pw2")
    assert mail_server.deliver("carol", mail()) == 1
    assert mail_server.context.auth.known("carol")
    port = mail_server.ports.submission
    assert port is not None
    with smtplib.SMTP(mail_server.host, port, timeout=10) as client:
        client.starttls(context=mail_server.client_ssl_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alice", "wrong")
        client.login("alice", "secret")
        client.sendmail("alice@localhost", ["carol@localhost"], mail(to="carol@localhost"))
    assert len(mail_server.wait_for_messages("carol", 2)) == 2


def test_wait_timeout_says_what_arrived_and_where(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", mail("first"))
    send(mail_server, "alicia@localhost", mail("misaddressed", to="alicia@localhost"))
    with pytest.raises(MailTimeout) as info:
        mail_server.wait_for_messages("alice", 2, timeout=0.3)
    text = str(info.value)
    assert "waiting for 2 message(s) in alice's INBOX; 1 arrived:" in text
    assert "uid 1: 'first' from bob@example.com" in text
    assert "mail elsewhere: alicia/INBOX (1)" in text
    assert isinstance(info.value, TimeoutError)


def test_wait_wakes_when_mail_arrives_later(mail_server: ThreadedMailServer) -> None:
    timer = threading.Timer(0.2, send, (mail_server, "alice@localhost", mail("late")))
    timer.start()
    try:
        msgs = mail_server.wait_for_messages("alice", 1, timeout=10)
    finally:
        timer.join()
    assert [m.subject for m in msgs] == ["late"]


def test_wait_returns_every_message_once_enough(mail_server: ThreadedMailServer) -> None:
    for n in range(3):
        mail_server.deliver("alice", mail(f"m{n}"))
    assert [m.subject for m in mail_server.wait_for_messages("alice", 2)] == ["m0", "m1", "m2"]
    assert mail_server.wait_for_messages("alice", 0) != []


def test_bump_uidvalidity(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", mail())

    async def uidvalidity() -> int:
        box = await mail_server.context.store.open("alice")
        return (await box.snapshot()).uidvalidity

    before = mail_server._call(uidvalidity())
    after = mail_server.bump_uidvalidity("alice")
    assert after != before and mail_server._call(uidvalidity()) == after


@pytest.mark.mail_server(services={"imap"})
def test_bump_uidvalidity_is_seen_by_imap_clients(mail_server: ThreadedMailServer) -> None:
    import imaplib

    mail_server.deliver("alice", mail())
    assert mail_server.ports.imap is not None

    def uidvalidity() -> int:
        with imaplib.IMAP4(mail_server.host, mail_server.ports.imap, timeout=10) as client:
            client.login("alice", "pw")
            typ, data = client.status("INBOX", "(UIDVALIDITY)")
            assert typ == "OK" and isinstance(data[0], bytes)
            return int(data[0].split(b"UIDVALIDITY ")[1].rstrip(b")"))

    before = uidvalidity()
    assert mail_server.bump_uidvalidity("alice") == uidvalidity() != before


def test_transcripts_record_sessions(mail_server: ThreadedMailServer) -> None:
    send(mail_server, "alice@localhost", mail())
    lines = mail_server.transcripts
    assert any(t.direction == "C" and t.text.startswith("EHLO") for t in lines)
    assert {t.protocol for t in lines} == {"smtp"}
    assert "C: RCPT TO:<alice@localhost>" in mail_server.transcript_text()
    assert mail_server.transcript_text(last=0) == ""
    assert mail_server.transcript_text(last=1).count("\n") == 1


def test_client_ssl_context_trusts_the_server(mail_server: ThreadedMailServer) -> None:
    ctx = mail_server.client_ssl_context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert mail_server.ports.smtps is not None
    with smtplib.SMTP_SSL(mail_server.host, mail_server.ports.smtps, context=ctx) as client:
        client.login("alice", "any password in dev mode")
        client.sendmail("alice@localhost", ["bob@localhost"], mail(to="bob@localhost"))
    assert mail_server.wait_for_messages("bob", 1)[0].sender == "bob@example.com"
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        smtplib.SMTP_SSL(
            mail_server.host, mail_server.ports.smtps, context=ssl.create_default_context()
        ),
    ):
        pass


def test_reset_forgets_mail_added_users_faults_and_transcripts(
    mail_server: ThreadedMailServer,
) -> None:
    mail_server.add_user("temp", "pw")
    mail_server.deliver("alice", mail())
    send(mail_server, "bob@localhost", mail(to="bob@localhost"))
    mail_server.faults.fail("smtp", "MAIL", "451 later")
    mail_server.reset()
    assert mail_server.messages("alice") == [] and mail_server.messages("bob") == []
    assert mail_server.folders("alice") == []
    assert not mail_server.context.auth.known("temp")
    assert mail_server.faults.active == [] and mail_server.transcripts == []
    send(mail_server, "alice@localhost", mail("after reset"))
    assert [m.uid for m in mail_server.wait_for_messages("alice", 1)] == [1]


@pytest.mark.mail_server(users={"kept": "pw"})
def test_reset_keeps_configured_users(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("kept", mail())
    mail_server.reset()
    assert mail_server.messages("kept") == [] and mail_server.folders("kept")[0] == "INBOX"
    assert mail_server.context.auth.known("kept")


def test_sync_api_refuses_the_servers_own_loop(mail_server: ThreadedMailServer) -> None:
    async def inside() -> None:
        mail_server.messages("alice")

    loop = mail_server._loop
    assert loop is not None
    future = asyncio.run_coroutine_threadsafe(inside(), loop)
    with pytest.raises(RuntimeError, match="server's own loop"):
        future.result(10)


# -- sync fixture in an async test, async fixture ---------------------------------------------


async def test_threaded_server_from_an_async_test(mail_server: ThreadedMailServer) -> None:
    sending = asyncio.create_task(asyncio.to_thread(send, mail_server, "al@localhost", mail()))
    msgs = await mail_server.aio.wait_for_messages("al", 1)  # does not block this loop
    await sending
    assert msgs[0].subject == "Hello"
    assert await mail_server.aio.deliver("al", mail("two")) == 2
    assert [m.subject for m in await mail_server.aio.messages("al")] == ["Hello", "two"]
    await mail_server.aio.add_user("zed", "pw")
    assert await mail_server.aio.folders("zed") != []
    await mail_server.aio.reset()
    assert mail_server.messages("al") == []


async def test_threaded_server_aio_folders_and_uidvalidity(mail_server: ThreadedMailServer) -> None:
    await mail_server.aio.create_folder("alice", "Projects")
    assert "Projects" in await mail_server.aio.folders("alice")
    await mail_server.aio.deliver("alice", mail(), folder="Projects")

    async def uidvalidity() -> int:
        box = await mail_server.context.store.open("alice", "Projects")
        return (await box.snapshot()).uidvalidity

    before = await mail_server.aio._await(uidvalidity())  # on the server's loop, not this one
    after = await mail_server.aio.bump_uidvalidity("alice", "Projects")
    assert after != before and await mail_server.aio._await(uidvalidity()) == after


async def test_async_fixture_api(mail_server_async: AsyncMailServer) -> None:
    server = mail_server_async
    assert server.ports.smtp is not None and server.host == "127.0.0.1"
    await asyncio.to_thread(send, server, "alice@localhost", mail("async"))
    [msg] = await server.wait_for_messages("alice", 1)
    assert msg.subject == "async"
    uid = await server.deliver("alice", mail("direct"), folder="Later", flags=["\\Flagged"])
    assert "Later" in await server.folders("alice")
    [later] = await server.messages("alice", "Later")
    assert (later.uid, later.flags) == (uid, frozenset({"\\Flagged"}))
    await server.add_user("x", "pw")
    assert await server.bump_uidvalidity("alice", "Later") > 0
    assert any(t.protocol == "smtp" for t in server.transcripts)
    await server.reset()
    assert await server.messages("alice") == [] and not server.context.auth.known("x")
    with pytest.raises(MailTimeout, match="0 arrived"):
        await server.wait_for_messages("alice", 1, timeout=0.2)


async def test_async_fixture_runs_on_the_tests_loop(mail_server_async: AsyncMailServer) -> None:
    sub = mail_server_async.context.store.subscribe("alice")  # loop-bound: would fail elsewhere
    try:
        await mail_server_async.deliver("alice", mail())
        event = await asyncio.wait_for(sub.get(), 5)
        assert event.user == "alice" and event.actor == "api"
    finally:
        sub.close()


# -- ThreadedMailServer on its own ------------------------------------------------------------


def test_standalone_server_cleans_up_its_directory() -> None:
    before = threading.active_count()
    server = ThreadedMailServer(services=SMTP_ONLY)
    base = server.async_server.base_dir
    with server:
        send(server, "alice@localhost", mail())
        assert server.wait_for_messages("alice", 1)
        assert base.exists()
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    assert not base.exists()
    server.stop()  # a second stop does nothing
    with pytest.raises(RuntimeError, match="temporary directory is gone"):
        server.start()
    with pytest.raises(RuntimeError, match="not running"):
        server.messages("alice")
    assert threading.active_count() == before


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_threaded_server_on_either_loop(loop: str) -> None:
    with ThreadedMailServer(services=SMTP_ONLY, loop=loop) as server:
        send(server, "alice@localhost", mail(loop))
        assert server.wait_for_messages("alice", 1)[0].subject == loop
        assert type(server._loop).__module__.startswith(loop)


def test_port_in_use_fails_start_cleanly(tmp_path: Path) -> None:
    with ThreadedMailServer(tmp_path / "a", services={"smtp"}) as first:
        before = threading.active_count()
        busy = ThreadedMailServer(
            tmp_path / "b", services={"smtp", "submission"}, ports={"smtp": first.ports.smtp}
        )
        with pytest.raises(PortInUse, match="smtp port"):
            busy.start()
        assert threading.active_count() == before
        busy.stop()


def test_bad_options_fail_before_starting(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="colour"):
        ThreadedMailServer(tmp_path, colour="red")


def test_start_stop_and_reset_times(capsys: pytest.CaptureFixture[str]) -> None:
    """Start+stop of a fresh server and reset(): printed for the record, never asserted."""
    with ThreadedMailServer():  # imports and the process CA, paid once
        pass
    start_stop: list[float] = []
    for _ in range(7):
        t0 = time.perf_counter()
        with ThreadedMailServer():
            pass
        start_stop.append(time.perf_counter() - t0)
    resets: list[float] = []
    with ThreadedMailServer() as server:
        for _ in range(7):
            for n in range(10):
                server.deliver(f"u{n % 3}", mail(), folder="INBOX" if n % 2 else "Work")
            t0 = time.perf_counter()
            server.reset()
            resets.append(time.perf_counter() - t0)
            assert server.messages("u0") == []
    start_ms = statistics.median(start_stop) * 1000
    reset_ms = statistics.median(resets) * 1000
    with capsys.disabled():
        print(
            f"\nmailsrv test server (every service but http, Maildir): "
            f"start+stop {start_ms:.1f} ms, reset with 10 messages {reset_ms:.1f} ms (medians)"
        )
