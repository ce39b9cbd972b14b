"""Scanning at delivery with the real engines: Debian's spamd and clamd, each started once for
this module on loopback with a config of its own (``tests/scan_daemons.py``); the tests skip
with the reason when a daemon is not installed.

Each outcome is checked over SMTP with smtplib and what IMAP (imaplib) and POP3 (poplib) clients
then see, over LMTP, the REST API, ``mailsrv deliver`` and the test fixture: clean, spam into
Junk, a virus refused at DATA with 554 or put in Quarantine.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import os
import poplib
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mailsrv.scan import probe as probe_module
from mailsrv.scan.delivery import VirusRefused
from mailsrv.scan.settings import ScanSettings
from mailsrv.server import MailServer
from mailsrv.testing import AsyncMailServer
from tests.scan_daemons import (
    EICAR,
    GTUBE,
    Daemon,
    clamd_missing,
    running_clamd,
    running_spamd,
    spamd_missing,
)
from tests.server_process import start_server

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def daemon_dir() -> Iterator[Path]:
    """A short directory (a UNIX socket path must fit in 108 bytes) spamd's user can read."""
    path = Path(tempfile.mkdtemp(prefix="scan-"))
    os.chmod(path, 0o755)  # noqa: S103 - spamd's children run as nobody when we are root
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def spamd(daemon_dir: Path) -> Iterator[Daemon]:
    reason = spamd_missing()
    if reason:
        pytest.skip(reason)
    with running_spamd(daemon_dir / "spamd") as daemon:
        yield daemon


@pytest.fixture(scope="module")
def clamd(daemon_dir: Path) -> Iterator[Daemon]:
    reason = clamd_missing()
    if reason:
        pytest.skip(reason)
    with running_clamd(daemon_dir / "clamd") as daemon:
        yield daemon


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A spamc URL whose port refuses connections (bound, not listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"spamc://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def scan(spamd: Daemon, clamd: Daemon) -> ScanSettings:
    return ScanSettings(spam=spamd.url, virus=clamd.url, timeout=30.0)


def message(body: str = "Lunch at noon?\n", subject: str = "lunch") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "bob@example.org"
    msg["To"] = "alice@localhost"
    msg["Subject"] = subject
    msg["Date"] = "Thu, 03 Dec 2026 12:00:00 +0000"
    msg["Message-ID"] = "<lunch.1234567@example.org>"
    msg.set_content(body)
    return msg


def spam() -> EmailMessage:
    return message(f"Buy now!\n{GTUBE.decode()}\n", "offer")


def infected() -> EmailMessage:
    msg = message("The report is attached.\n", "report")
    msg.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="r.com")
    assert EICAR not in msg.as_bytes()  # only inside the base64 attachment
    return msg


def smtp_send(port: int, msg: EmailMessage) -> tuple[int, bytes]:
    """MAIL, RCPT, DATA: the reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("client.test")
        assert client.mail("bob@example.org")[0] == 250
        assert client.rcpt("alice@localhost")[0] == 250
        return client.data(msg.as_bytes())


async def stored(server: MailServer, folder: str = "INBOX", user: str = "alice") -> list[bytes]:
    if not await server.store.user_exists(user):
        return []
    names = [f.name for f in await server.store.list_folders(user)]
    if folder not in names:
        return []
    mbox = await server.store.open(user, folder)
    return [await mbox.read(m.uid) for m in (await mbox.snapshot()).messages]


def header(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def imap_view(port: int) -> dict[str, Any]:
    """What an IMAP client sees: the special-use folders, and the flags and scan fields of the
    message in Junk, after it set ``$NotJunk`` on it."""
    with imaplib.IMAP4("127.0.0.1", port, timeout=30) as imap:
        imap.login("alice", "pw")
        _, listing = imap.list()
        junk = next(line for line in listing if b"\\Junk" in line)
        name = junk.rsplit(b" ", 1)[1].strip(b'"').decode()
        imap.select(name)
        _, fetched = imap.fetch(
            "1", "(FLAGS BODY.PEEK[HEADER.FIELDS (X-SPAM-STATUS X-SPAM-SCORE)])"
        )
        imap.store("1", "+FLAGS", "($NotJunk)")
        imap.noop()
        _, after = imap.fetch("1", "(FLAGS)")
        _, count = imap.select(name)
        return {"folder": name, "fetched": fetched, "after": after[0], "count": int(count[0])}


def pop3_top(port: int) -> bytes:
    client = poplib.POP3("127.0.0.1", port, timeout=30)
    try:
        client.user("alice")
        client.pass_("pw")
        return b"\r\n".join(client.top(1, 0)[1])
    finally:
        client.quit()


# -- SMTP ----------------------------------------------------------------------------------------


async def test_clean_mail_has_no_verdict_headers_seen_by_pop3(make_server: Any, scan: Any) -> None:
    async with make_server(services={"smtp", "pop3"}, scan=scan) as server:
        code, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, message())
        [data] = await stored(server)
        top = await asyncio.to_thread(pop3_top, server.ports.pop3)
        assert await stored(server, "Junk") == []
    assert code == 250
    head = header(data)
    assert b"X-Spam-Status: No, score=" in head
    assert b"X-Virus-Status: Clean" in head
    assert b"X-Spam-Status: No" in top and b"X-Virus-Status: Clean" in top


async def test_spam_goes_to_junk_with_the_junk_keyword(make_server: Any, scan: Any) -> None:
    async with make_server(services={"smtp", "imap"}, scan=scan) as server:
        code, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, spam())
        assert await stored(server) == []
        [data] = await stored(server, "Junk")
        seen = await asyncio.to_thread(imap_view, server.ports.imap)
        traced = [line for line in server.context.tracer.lines if line.text.startswith("scan:")]
    assert code == 250
    # The transcript (and so the console's live stream) tells the verdict in the SMTP session.
    [line] = traced
    assert line.protocol == "smtp" and line.direction == "*"
    assert line.text.startswith("scan: spam: yes ") and "GTUBE" in line.text
    head = header(data)
    status = re.search(rb"X-Spam-Status: Yes, score=(\S+) required=5.0 tests=\S*GTUBE", head)
    assert status is not None and float(status.group(1)) > 900  # GTUBE 1000, others small
    assert b"* 1000.0 GTUBE BODY: Generic Test for Unsolicited Bulk Email" in head
    assert seen["folder"] == "Junk"
    flags_line = seen["fetched"][0][0]
    assert b"$Junk" in flags_line
    assert b"X-Spam-Status: Yes" in seen["fetched"][0][1]
    # $NotJunk set by the client is kept and moves nothing: the message stays in Junk.
    assert b"$NotJunk" in seen["after"] and b"$Junk" in seen["after"]
    assert seen["count"] == 1


async def test_virus_is_refused_at_data_and_nothing_is_stored(make_server: Any, scan: Any) -> None:
    async with make_server(services={"smtp"}, scan=scan) as server:
        code, text = await asyncio.to_thread(smtp_send, server.ports.smtp, infected())
        assert await stored(server) == []
        assert await stored(server, "Quarantine") == []
    assert code == 554
    assert text.startswith(b"5.7.1 ")
    assert b"Eicar-Test-Signature" in text


async def test_quarantine_mode_keeps_the_virus_aside(make_server: Any, scan: Any) -> None:
    settings = ScanSettings(scan.spam, scan.virus, timeout=30.0, virus_action="quarantine")
    async with make_server(services={"smtp"}, scan=settings) as server:
        code, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, infected())
        assert await stored(server) == []
        [data] = await stored(server, "Quarantine")
    assert code == 250
    assert b"X-Virus-Status: Infected (Eicar-Test-Signature" in header(data)


async def test_clamd_over_its_unix_socket(make_server: Any, clamd: Daemon) -> None:
    settings = ScanSettings(virus=clamd.unix_url, timeout=30.0)
    async with make_server(services={"smtp"}, scan=settings) as server:
        refused = await asyncio.to_thread(smtp_send, server.ports.smtp, infected())
        code, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, message())
        [data] = await stored(server)
    assert refused[0] == 554
    assert code == 250
    assert b"X-Virus-Status: Clean" in header(data)
    assert b"X-Spam-Status" not in header(data)  # no spam engine configured


async def test_a_senders_own_verdict_is_replaced(make_server: Any, scan: Any) -> None:
    forged = message()
    forged["X-Spam-Status"] = "No, score=-100.0 required=5.0 tests=FORGED_BY_SENDER"
    forged["X-Virus-Status"] = "Clean"
    forged.set_content(f"{GTUBE.decode()}\n")
    async with make_server(services={"smtp"}, scan=scan) as server:
        await asyncio.to_thread(smtp_send, server.ports.smtp, forged)
        [data] = await stored(server, "Junk")
    head = header(data)
    assert b"FORGED_BY_SENDER" not in head
    assert head.count(b"X-Spam-Status:") == 1 and head.count(b"X-Virus-Status:") == 1


# -- LMTP, the REST API, mailsrv deliver ---------------------------------------------------------


def lmtp_send(port: int, msg: EmailMessage) -> list[tuple[int, bytes]]:
    with smtplib.LMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("mta.test")
        client.mail("bob@example.org")
        client.rcpt("alice@localhost")
        client.rcpt("carol@localhost")
        return [client.data(msg.as_bytes()), client.getreply()]


async def test_lmtp_scans_once_for_every_recipient(make_server: Any, scan: Any) -> None:
    async with make_server(services={"lmtp"}, scan=scan) as server:
        spam_replies = await asyncio.to_thread(lmtp_send, server.ports.lmtp, spam())
        virus_replies = await asyncio.to_thread(lmtp_send, server.ports.lmtp, infected())
        alice, carol = await stored(server, "Junk"), await stored(server, "Junk", "carol")
    assert [code for code, _ in spam_replies] == [250, 250]
    assert len(alice) == len(carol) == 1
    assert [code for code, _ in virus_replies] == [554, 554]


async def test_rest_api_delivers_scanned_and_shows_the_scan(make_server: Any, scan: Any) -> None:
    async with (
        make_server(services={"http"}, scan=scan) as server,
        aiohttp.ClientSession(f"http://127.0.0.1:{server.ports.http}") as http,
    ):
        await server.store.ensure_user("alice")
        api = "/api/v1/users/alice/folders"
        rfc822 = {"Content-Type": "message/rfc822"}
        async with http.post(f"{api}/INBOX/messages", data=spam().as_bytes(), headers=rfc822) as r:
            status, made = r.status, await r.json()
        assert status == 201, made
        async with http.get(f"{api}/Junk/messages/{made['uid']}") as r:
            shown = await r.json()
        async with http.get(f"{api}/Junk/messages") as r:
            listed = await r.json()
        bad = infected().as_bytes()
        async with http.post(f"{api}/INBOX/messages", data=bad, headers=rfc822) as r:
            refused, error = r.status, await r.json()
    assert status == 201 and made["folder"] == "Junk"
    assert made["scan"]["junk"] is True
    rules = {r["name"]: r for r in shown["scan"]["rules"]}
    assert rules["GTUBE"]["score"] == 1000.0
    assert rules["GTUBE"]["description"] == "BODY: Generic Test for Unsolicited Bulk Email"
    assert shown["scan"]["spam_score"] > 900 and shown["scan"]["virus_status"] == "clean"
    assert listed["messages"][0]["scan"]["junk"] is True
    assert refused == 422 and "Eicar-Test-Signature" in error["error"]


def test_mailsrv_deliver_scans_too(tmp_path: Path, scan: Any) -> None:
    conf = tmp_path / "mailsrv.toml"
    conf.write_text(
        f'maildir = "{tmp_path / "mail"}"\n[scan]\nspam = "{scan.spam}"\n'
        f'virus = "{scan.virus}"\ntimeout = 30\n'
    )
    argv = [sys.executable, "-m", "mailsrv", "deliver", "--config", str(conf), "--to", "alice"]
    ok = subprocess.run(argv, input=spam().as_bytes(), capture_output=True, timeout=90)
    bad = subprocess.run(argv, input=infected().as_bytes(), capture_output=True, timeout=90)
    assert ok.returncode == 0, ok.stderr
    assert b"into Junk" in ok.stderr
    assert list((tmp_path / "mail" / "alice" / ".Junk").glob("*/*,S=*"))
    assert bad.returncode != 0
    assert b"virus found (Eicar-Test-Signature" in bad.stderr
    assert b"Traceback" not in bad.stderr


# -- the fixture ----------------------------------------------------------------------------------


async def test_fixture_deliveries_are_scanned(scan: ScanSettings) -> None:
    async with AsyncMailServer(scan=scan, services={"smtp"}) as server:
        await server.deliver("alice", spam())
        await server.deliver("alice", message())
        with pytest.raises(VirusRefused) as refused:
            await server.deliver("alice", infected())
        [junk] = await server.messages("alice", "Junk")
        [clean] = await server.messages("alice")
    assert junk.scan is not None and clean.scan is not None
    assert junk.scan.spam_score is not None and junk.scan.spam_score > 900
    assert "GTUBE" in junk.scan.rules
    assert junk.scan.rules["GTUBE"].description.startswith("BODY: Generic Test")
    assert "$Junk" in junk.flags
    assert clean.scan.spam_status == "no" and clean.scan.virus is None
    assert clean.scan.virus_status == "clean"
    assert refused.value.name.startswith("Eicar-Test-Signature")


async def test_fixture_quarantine_tells_the_virus(scan: ScanSettings) -> None:
    settings = {"virus": scan.virus, "virus_action": "quarantine", "timeout": 30.0}
    async with AsyncMailServer(scan=settings, services={"smtp"}) as server:
        await server.deliver("alice", infected())
        [kept] = await server.messages("alice", "Quarantine")
    assert kept.scan is not None and kept.scan.virus is not None
    assert kept.scan.virus.startswith("Eicar-Test-Signature")
    assert kept.scan.spam_check is None  # no spam engine


# -- mailsrv serve ------------------------------------------------------------------------------


def test_serve_says_in_its_banner_what_answers(tmp_path: Path, scan: ScanSettings) -> None:
    conf = tmp_path / "mailsrv.toml"
    conf.write_text(f'[scan]\nspam = "{scan.spam}"\nvirus = "{scan.virus}"\ntimeout = 30\n')
    server = start_server(tmp_path / "mail", tmp_path, "--config", str(conf), "--scan")
    try:
        reply = smtp_send(server.ports["smtp"], spam())
        banner = server.log.read_text()
    finally:
        assert server.stop() == 0
    assert f"Scanning: spam   {scan.spam} (answers)" in banner
    assert f"virus  {scan.virus} (answers)" in banner
    assert reply[0] == 250
    assert list((tmp_path / "mail" / "alice" / ".Junk").glob("*/*,S=*"))


async def test_scan_flag_finds_local_engines(
    monkeypatch: pytest.MonkeyPatch, spamd: Daemon, clamd: Daemon, refused_url: str
) -> None:
    monkeypatch.setattr(probe_module, "LOCAL_SPAM_DEFAULTS", (refused_url, spamd.url))
    monkeypatch.setattr(probe_module, "LOCAL_VIRUS_DEFAULTS", (clamd.unix_url,))
    found, lines = await probe_module.probe(ScanSettings(), look_locally=True)
    assert (found.spam, found.virus) == (spamd.url, clamd.unix_url)
    assert lines == [
        f"spam   {spamd.url} (found, answers)",
        f"virus  {clamd.unix_url} (found, answers)",
    ]
    assert (await probe_module.probe(ScanSettings(), look_locally=False))[0] == ScanSettings()


def test_demo_scene_scanned_once_on_the_server(scan: ScanSettings) -> None:
    argv = [sys.executable, "-m", "mailsrv", "demo", "--json"]
    argv += ["--spam", str(scan.spam), "--virus", str(scan.virus)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = list(json.loads(proc.stdout).values())[6]
    assert facts == {
        "scanning": 1,
        "virus_refused": 1,
        "laptop_junk": 1,
        "junk_keyword": 1,
        "tablet_junk": 1,
        "phone_told_exists": 0,
        "pop3_sees_inbox": 1,
    }
    assert "7. Scanned once, on the server" in proc.stderr
    assert "spam and viruses" in proc.stderr


async def test_the_live_stream_tells_the_verdict(make_server: Any, scan: ScanSettings) -> None:
    async with (
        make_server(services={"http", "smtp"}, scan=scan) as server,
        aiohttp.ClientSession(f"http://127.0.0.1:{server.ports.http}") as http,
        http.get("/api/v1/stream") as stream,
    ):
        await read_sse(stream, "hello")
        code, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, spam())
        line = await asyncio.wait_for(read_sse(stream, "trace", "scan:"), 30)
        event = await asyncio.wait_for(read_sse(stream, "store"), 30)
    assert code == 250
    assert line["protocol"] == "smtp" and line["direction"] == "*"
    assert line["text"].startswith("scan: spam: yes") and "virus: clean" in line["text"]
    assert event["kind"] == "delivered" and event["folder"] == "Junk"
    assert event["protocol"] == "smtp"


async def read_sse(resp: aiohttp.ClientResponse, wanted: str, text: str = "") -> dict[str, Any]:
    """Read the stream until an event named ``wanted`` (whose data holds ``text``) arrives."""
    name = ""
    while True:
        line = (await resp.content.readline()).decode()
        assert line, "stream ended"
        if line.startswith("event: "):
            name = line[7:].strip()
        elif line.startswith("data: ") and name == wanted and text in line:
            return dict(json.loads(line[6:]))


async def test_spam_filed_into_junk_is_held_to_the_junk_folders_quota_rules(
    make_server: Any, scan: Any
) -> None:
    """The quota a delivery is checked against is that of the folder the scanner files it in:
    with ``Junk:ignore``, spam still lands while clean mail to the full INBOX is refused."""
    async with make_server(services={"smtp"}, scan=scan) as server:
        server.context.quota.set("alice", None, 1, ["Junk:ignore"])
        first, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, message())
        refused, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, message("Dinner?\n"))
        code, _ = await asyncio.to_thread(smtp_send, server.ports.smtp, spam())
        inbox, junk = await stored(server), await stored(server, "Junk")
    assert first == 250
    assert refused == 552  # at DATA: the RCPT check leaves it to the folder the message gets
    assert code == 250
    assert len(inbox) == 1 and len(junk) == 1
