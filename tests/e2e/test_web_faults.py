"""Faults over HTTP: ``/api/v1/faults`` driven with curl, observed with imaplib, poplib and
smtplib against a running server (the same engine as ``mail_server.faults``)."""

from __future__ import annotations

import imaplib
import json
import poplib
import shutil
import smtplib
import socket
import subprocess
import time
from typing import Any

import pytest

from mailsrv.testing import ThreadedMailServer

TOKEN = "fault-token"
ALL = {"imap", "pop3", "smtp", "http"}
MESSAGE = "From: bob@example.com\nTo: alice@localhost\nSubject: Hello\n\nline\n"

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl"),
    pytest.mark.mail_server(services=ALL, http_token=TOKEN),
]


def curl(
    server: ThreadedMailServer, method: str, path: str, body: Any = None, token: str = TOKEN
) -> tuple[int, Any]:
    """``curl -X method`` on the API: the status and the decoded JSON answer."""
    url = f"http://{server.host}:{server.ports.http}/api/v1{path}"
    args = ["curl", "-sS", "-X", method, "-H", f"Authorization: Bearer {token}"]
    args += ["-w", "\n%{http_code}", url]
    if body is not None:
        data = body if isinstance(body, str) else json.dumps(body)
        args += ["-H", "Content-Type: application/json", "--data-binary", data]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=20).stdout
    text, _, status = out.rpartition("\n")
    return int(status), json.loads(text) if text.startswith("{") else text


def post(server: ThreadedMailServer, **body: Any) -> int:
    status, answer = curl(server, "POST", "/faults", body)
    assert status == 201, answer
    assert isinstance(answer["id"], int)
    return int(answer["id"])


def raw_reply(port: int | None, line: bytes) -> bytes:
    """Send one command line after the greeting; the first reply line, without CRLF."""
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), 10) as raw, raw.makefile("rb") as reader:
        reader.readline()
        raw.sendall(line + b"\r\n")
        return reader.readline().rstrip(b"\r\n")


def imap_login(server: ThreadedMailServer, user: str = "alice") -> imaplib.IMAP4:
    assert server.ports.imap is not None
    client = imaplib.IMAP4(server.host, server.ports.imap, timeout=10)
    client.login(user, "pw")
    return client


def test_fail_once_then_listed_hits_and_gone(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    fid = post(
        mail_server,
        protocol="imap",
        command="FETCH",
        action="fail",
        reply="NO [UNAVAILABLE] try later",
        times=2,
    )
    status, listed = curl(mail_server, "GET", "/faults")
    assert status == 200 and [f["id"] for f in listed["faults"]] == [fid]
    assert listed["faults"][0]["hits"] == 0 and listed["faults"][0]["action"] == "fail"
    client = imap_login(mail_server)
    try:
        client.select("INBOX")
        assert client.fetch("1", "(FLAGS)") == ("NO", [b"[UNAVAILABLE] try later"])
        assert curl(mail_server, "GET", "/faults")[1]["faults"][0]["hits"] == 1
        assert client.fetch("1", "(FLAGS)")[0] == "NO"
        assert client.fetch("1", "(FLAGS)")[0] == "OK"  # times=2: used up
    finally:
        client.logout()
    assert curl(mail_server, "GET", "/faults")[1] == {"faults": []}


def test_delete_one_and_all(mail_server: ThreadedMailServer) -> None:
    first = post(mail_server, protocol="pop3", command="STAT", action="fail", times=None)
    post(mail_server, protocol="smtp", command="MAIL", action="fail")
    status, _ = curl(mail_server, "DELETE", f"/faults/{first}")
    assert status == 200
    assert [f["protocol"] for f in curl(mail_server, "GET", "/faults")[1]["faults"]] == ["smtp"]
    assert curl(mail_server, "DELETE", f"/faults/{first}")[0] == 404
    assert curl(mail_server, "DELETE", "/faults")[0] == 200
    assert curl(mail_server, "GET", "/faults")[1] == {"faults": []}


def test_pop3_drop_after_bytes_for_one_user(mail_server: ThreadedMailServer) -> None:
    mail_server.deliver("alice", MESSAGE)
    mail_server.deliver("bob", MESSAGE)
    post(
        mail_server,
        protocol="pop3",
        command="RETR",
        action="drop",
        after_bytes=10,
        user="alice",
        times=None,
    )
    assert mail_server.ports.pop3 is not None
    bob = poplib.POP3(mail_server.host, mail_server.ports.pop3, timeout=10)
    bob.user("bob")
    bob.pass_("pw")
    assert b"Subject: Hello" in b"\n".join(bob.retr(1)[1])  # not bob's fault
    bob.quit()
    alice = poplib.POP3(mail_server.host, mail_server.ports.pop3, timeout=10)
    alice.user("alice")
    alice.pass_("pw")
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        alice.retr(1)
    alice.close()


def test_smtp_delay_and_rcpt_match(mail_server: ThreadedMailServer) -> None:
    post(mail_server, protocol="smtp", command="NOOP", action="delay", seconds=0.5)
    post(
        mail_server,
        protocol="smtp",
        command="RCPT",
        action="fail",
        reply="550 5.1.1 No such user here",
        match="*bounce-*@example.com*",
        times=None,
    )
    assert mail_server.ports.smtp is not None
    with smtplib.SMTP(mail_server.host, mail_server.ports.smtp, timeout=10) as client:
        started = time.monotonic()
        assert client.noop()[0] == 250
        assert time.monotonic() - started >= 0.45
        client.ehlo()
        assert client.mail("bob@example.com")[0] == 250
        assert client.rcpt("bounce-7@example.com") == (550, b"5.1.1 No such user here")
        assert client.rcpt("alice@localhost")[0] == 250
    assert curl(mail_server, "GET", "/faults")[1]["faults"][0]["hits"] == 1


def test_imap_match_on_the_mailbox(mail_server: ThreadedMailServer) -> None:
    post(mail_server, protocol="imap", command="SELECT", action="fail", match="Arch*", times=None)
    client = imap_login(mail_server)
    try:
        client.create("Archive")
        assert client.select("INBOX")[0] == "OK"
        assert client.select("Archive")[0] == "NO"
    finally:
        client.logout()


def test_behind_the_token(mail_server: ThreadedMailServer) -> None:
    assert curl(mail_server, "GET", "/faults", token="wrong")[0] == 401
    body = {"protocol": "imap", "command": "FETCH", "action": "fail"}
    assert curl(mail_server, "POST", "/faults", body, token="wrong")[0] == 401
    assert mail_server.faults.active == []


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("{not json", "JSON"),
        ({"protocol": "gopher", "command": "X", "action": "fail"}, "protocol"),
        ({"protocol": "imap", "command": "X", "action": "explode"}, "action"),
        ({"protocol": "imap", "command": "X", "action": "fail", "colour": "red"}, "colour"),
        ({"protocol": "imap", "command": "X", "action": "fail", "seconds": 1}, "seconds"),
        ({"protocol": "imap", "action": "fail"}, "command"),
        ({"protocol": "imap", "command": "X", "action": "fail", "reply": "550 x"}, "reply"),
        ({"protocol": "imap", "command": "X", "action": "delay", "seconds": -1}, "seconds"),
        ({"protocol": "imap", "command": "X", "action": "drop", "after_bytes": "9"}, "after_bytes"),
        ({"protocol": "imap", "command": "X", "action": "fail", "times": 0}, "times"),
        ({"protocol": "imap", "command": "X", "action": "fail", "user": 3}, "user"),
    ],
)
def test_bad_requests_name_the_field(mail_server: ThreadedMailServer, body: Any, word: str) -> None:
    status, answer = curl(mail_server, "POST", "/faults", body)
    assert status == 400, answer
    assert word.lower() in answer["error"].lower()
    assert mail_server.faults.active == []


# -- strip-starttls: a downgrading middlebox ------------------------------------------------


def test_strip_starttls_imap(mail_server: ThreadedMailServer) -> None:
    assert mail_server.ports.imap is not None
    before = imaplib.IMAP4(mail_server.host, mail_server.ports.imap, timeout=10)
    assert "STARTTLS" in before.capabilities
    before.logout()
    fid = post(mail_server, protocol="imap", action="strip-starttls")
    client = imaplib.IMAP4(mail_server.host, mail_server.ports.imap, timeout=10)
    try:
        assert "STARTTLS" not in client.capabilities
        assert "STARTTLS" not in client.capability()[1][0].decode().split()
        with pytest.raises(imaplib.IMAP4.error, match="TLS not supported"):
            client.starttls(ssl_context=mail_server.client_ssl_context())  # imaplib trusts it
        # A client that tries anyway is refused:
        assert raw_reply(mail_server.ports.imap, b"a1 STARTTLS") == b"a1 BAD STARTTLS not available"
    finally:
        client.logout()
    listed = curl(mail_server, "GET", "/faults")[1]["faults"]
    assert listed[0]["action"] == "strip-starttls" and listed[0]["hits"] == 1
    curl(mail_server, "DELETE", f"/faults/{fid}")
    after = imaplib.IMAP4(mail_server.host, mail_server.ports.imap, timeout=10)
    after.starttls(ssl_context=mail_server.client_ssl_context())  # back to normal
    after.logout()


def test_strip_starttls_pop3(mail_server: ThreadedMailServer) -> None:
    assert mail_server.ports.pop3 is not None
    post(mail_server, protocol="pop3", action="strip-starttls")
    client = poplib.POP3(mail_server.host, mail_server.ports.pop3, timeout=10)
    try:
        assert "STLS" not in client.capa()
        with pytest.raises(poplib.error_proto, match="STLS not supported"):
            client.stls(context=mail_server.client_ssl_context())  # poplib trusts CAPA
    finally:
        client.quit()
    # A client that tries anyway is refused:
    assert raw_reply(mail_server.ports.pop3, b"STLS") == b"-ERR STLS is not available here"


def test_strip_starttls_smtp_from_the_fixture(mail_server: ThreadedMailServer) -> None:
    assert mail_server.ports.smtp is not None
    with smtplib.SMTP(mail_server.host, mail_server.ports.smtp, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
    mail_server.faults.strip_starttls("smtp")
    with smtplib.SMTP(mail_server.host, mail_server.ports.smtp, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.docmd("STARTTLS") == (502, b"5.5.1 STARTTLS not available")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.starttls(context=mail_server.client_ssl_context())
    assert curl(mail_server, "GET", "/faults")[1]["faults"][0]["action"] == "strip-starttls"


def test_strip_starttls_refuses_other_protocols_and_fields(mail_server: ThreadedMailServer) -> None:
    status, answer = curl(
        mail_server, "POST", "/faults", {"protocol": "lmtp", "action": "strip-starttls"}
    )
    assert status == 400 and "protocol" in answer["error"]
    status, answer = curl(
        mail_server,
        "POST",
        "/faults",
        {"protocol": "imap", "action": "strip-starttls", "reply": "BAD x"},
    )
    assert status == 400 and "reply" in answer["error"]
