"""The client report card with real clients: imaplib and poplib behaving badly and well against
the fixture (``mail_server.report``), and the same card over the REST API with curl."""

from __future__ import annotations

import imaplib
import json
import poplib
import shutil
import smtplib
import subprocess
import time
from typing import Any

import pytest

from mailsrv.report.findings import Finding
from mailsrv.testing import ThreadedMailServer

TOKEN = "report-token"
MESSAGE = "From: bob@example.com\nTo: alice@localhost\nSubject: Hello\n\nline\n"


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def wait_for_code(server: ThreadedMailServer, user: str, code: str) -> list[Finding]:
    """Habits noted at close show once the server has seen the connection end."""
    deadline = time.monotonic() + 10
    while code not in codes(found := server.report(user)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def careless_imap(server: ThreadedMailServer, user: str) -> None:
    """Cleartext LOGIN, NOOP polling, sequence numbers, BODY[] that sets \\Seen."""
    client = imaplib.IMAP4(server.host, server.ports.imap, timeout=10)
    client.login(user, "pw")
    client.select("INBOX")
    for _ in range(3):
        client.noop()
    client.fetch("1:*", "(BODY[])")
    client.logout()


def careful_imap(server: ThreadedMailServer, user: str, first_new: int = 1) -> int:
    """TLS first, UID commands, BODY.PEEK[] of only the UIDs it has not seen, IDLE, LOGOUT;
    returns the UIDNEXT to start from next time."""
    client = imaplib.IMAP4(server.host, server.ports.imap, timeout=10)
    client.starttls(server.client_ssl_context())
    client.login(user, "pw")
    client.select("INBOX")
    uidnext = int(client.response("UIDNEXT")[1][0])
    assert client.uid("FETCH", "1:*", "(UID FLAGS)")[0] == "OK"
    if first_new < uidnext:
        typ, data = client.uid("FETCH", f"{first_new}:*", "(UID BODY.PEEK[])")
        assert typ == "OK" and data
    tag = client._new_tag().decode()  # IDLE: imaplib has no method for it before 3.14
    client.send(f"{tag} IDLE\r\n".encode())
    assert client.readline().startswith(b"+")
    client.send(b"DONE\r\n")
    while not client.readline().startswith(tag.encode()):
        pass
    client.logout()
    return uidnext


@pytest.mark.mail_server(services={"imap"})
def test_a_careless_imap_client_gets_its_card(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    careless_imap(mail_server, "alice")
    careless_imap(mail_server, "alice")
    found = {f.code: f for f in mail_server.report("alice")}
    assert set(found) == {
        "cleartext-login",
        "poll-instead-of-idle",
        "no-uid-commands",
        "fetch-sets-seen",
        "refetch-all",
    }
    assert found["cleartext-login"].severity == "error"
    assert all(line.endswith(" LOGIN alice ***") for line in found["cleartext-login"].evidence)
    refetch = found["refetch-all"].evidence
    assert len(refetch) == 2 and all(line.endswith("FETCH 1:* (BODY[])") for line in refetch)
    assert refetch[0].split()[0] != refetch[1].split()[0]  # two sessions
    assert mail_server.messages("alice")[0].flags == {"\\Seen"}  # what fetch-sets-seen means


@pytest.mark.mail_server(services={"imap"})
def test_a_careful_imap_client_gets_no_findings(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    uidnext = careful_imap(mail_server, "alice")
    mail_server.deliver("alice", MESSAGE)
    careful_imap(mail_server, "alice", uidnext)
    assert mail_server.report("alice") == []
    assert [m.flags for m in mail_server.messages("alice")] == [set(), set()]


@pytest.mark.mail_server(services={"imap"})
def test_closing_without_logout_is_noted(mail_server: ThreadedMailServer) -> None:
    client = imaplib.IMAP4(mail_server.host, mail_server.ports.imap, timeout=10)
    client.starttls(mail_server.client_ssl_context())
    client.login("alice", "pw")
    client.shutdown()
    found = wait_for_code(mail_server, "alice", "no-logout")
    assert [f.code for f in found] == ["no-logout"] and found[0].severity == "info"


@pytest.mark.mail_server(services={"pop3"})
def test_pop3_leave_on_server_without_uidl_then_with_it(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    mail_server.deliver("bob", MESSAGE)
    for user, uidl in (("alice", False), ("bob", True)):
        client = poplib.POP3(mail_server.host, mail_server.ports.pop3, timeout=10)
        client.stls(mail_server.client_ssl_context())
        client.user(user)
        client.pass_("pw")
        if uidl:
            client.uidl()
        client.retr(1)
        client.quit()
    [finding] = mail_server.report("alice")
    assert finding.code == "pop3-redownload"
    assert [line.split(" ", 1)[1] for line in finding.evidence] == ["C: RETR 1", "C: QUIT"]
    assert mail_server.report("bob") == []


@pytest.mark.mail_server(services={"pop3"})
def test_pop3_dele_then_hang_up_keeps_the_mail_and_is_noted(
    mail_server: ThreadedMailServer,
) -> None:
    mail_server.deliver("alice", MESSAGE)
    client = poplib.POP3(mail_server.host, mail_server.ports.pop3, timeout=10)
    client.user("alice")
    client.pass_("pw")
    client.dele(1)
    client.close()
    found = wait_for_code(mail_server, "alice", "pop3-dele-without-quit")
    assert codes(found) == {"cleartext-login", "pop3-dele-without-quit"}
    assert len(mail_server.messages("alice")) == 1


def curl(server: ThreadedMailServer, path: str, token: str = TOKEN) -> tuple[int, Any]:
    url = f"http://{server.host}:{server.ports.http}/api/v1{path}"
    args = ["curl", "-sS", "-H", f"Authorization: Bearer {token}", "-w", "\n%{http_code}", url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=20).stdout
    text, _, status = out.rpartition("\n")
    return int(status), json.loads(text)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.mail_server(services={"imap", "submission", "http"}, http_token=TOKEN)
def test_the_card_over_the_rest_api(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    careless_imap(mail_server, "alice")
    smtp = smtplib.SMTP(mail_server.host, mail_server.ports.submission, timeout=10)
    smtp.helo("old.client")
    smtp.quit()
    status, card = curl(mail_server, "/report?user=alice")
    assert status == 200 and card["user"] == "alice"
    assert [f["code"] for f in card["findings"]] == [
        "cleartext-login",
        "fetch-sets-seen",
        "no-uid-commands",
        "poll-instead-of-idle",
    ]
    first = card["findings"][0]
    assert set(first) == {"code", "severity", "message", "evidence", "count"}
    session = first["evidence"][0].split()[0]
    status, one = curl(mail_server, f"/sessions/{session}/report")
    assert status == 200 and [f["code"] for f in one["findings"]] == [
        f["code"] for f in card["findings"]
    ]
    smtp_sessions = [
        s for s in curl(mail_server, "/sessions")[1]["closed"] if s["id"][:4] == "smtp"
    ]
    status, helo = curl(mail_server, f"/sessions/{smtp_sessions[0]['id']}/report")
    assert [f["code"] for f in helo["findings"]] == ["smtp-helo"]
    assert curl(mail_server, "/report?user=nobody") == (200, {"user": "nobody", "findings": []})
    assert curl(mail_server, "/report")[0] == 400
    assert curl(mail_server, "/sessions/imap-999/report")[0] == 404
    assert curl(mail_server, "/report?user=alice", token="wrong")[0] == 401


@pytest.mark.mail_server(services={"imap"})
def test_reset_clears_the_card(mail_server: ThreadedMailServer) -> None:
    careless_imap(mail_server, "alice")
    assert mail_server.report("alice")
    mail_server.reset()
    assert mail_server.report("alice") == []


async def test_the_async_fixture_has_the_card(mail_server_async: Any) -> None:
    import asyncio

    await asyncio.to_thread(careless_imap, mail_server_async, "alice")
    assert "cleartext-login" in codes(await mail_server_async.report("alice"))
