"""mailsrv as a pytest fixture: a real mail server for each test, nothing to configure.

Installing mailsrv installs the plugin. Run: pytest examples/test_with_pytest.py
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
from email.message import EmailMessage

import pytest


def send_welcome(host: str, port: int, to: str) -> None:
    """The code under test: your application sending mail."""
    msg = EmailMessage()
    msg["From"] = "app@example.com"
    msg["To"] = to
    msg["Subject"] = "Welcome!"
    msg.set_content("Thanks for signing up.")
    with smtplib.SMTP(host, port) as smtp:
        smtp.send_message(msg)


def test_welcome_mail_arrives(mail_server):
    send_welcome(mail_server.host, mail_server.ports.smtp, "alice@localhost")

    [msg] = mail_server.wait_for_messages("alice", 1)
    assert msg.subject == "Welcome!"
    assert msg.sender == "app@example.com"
    assert msg.text == "Thanks for signing up.\n"


@pytest.mark.mail_server(users={"alice": "s3cret"}, dev=False)
def test_read_it_with_imap_over_tls(mail_server):
    mail_server.deliver("alice", "Subject: Invoice\n\nPlease pay.\n", flags=["\\Flagged"])

    context = mail_server.client_ssl_context()  # trusts the test server's CA
    with imaplib.IMAP4_SSL(mail_server.host, mail_server.ports.imaps, ssl_context=context) as imap:
        imap.login("alice", "s3cret")
        imap.select("INBOX")
        typ, data = imap.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert b"\\Flagged" in data[0][0] and b"Subject: Invoice" in data[0][1]


@pytest.mark.mail_server(pop3_delete="flag")
def test_pop3_delete_only_flags(mail_server):
    mail_server.deliver("bob", "Subject: one\n\nfirst\n")

    pop = poplib.POP3(mail_server.host, mail_server.ports.pop3)
    pop.user("bob")
    pop.pass_("any password works in dev mode")
    pop.dele(1)
    pop.quit()

    [msg] = mail_server.messages("bob")  # still there, marked \Deleted for IMAP clients
    assert "\\Deleted" in msg.flags


def test_the_app_survives_a_temporary_failure(mail_server):
    mail_server.faults.fail("smtp", "DATA", "451 4.3.0 Try again later", times=1)

    with pytest.raises(smtplib.SMTPDataError):
        send_welcome(mail_server.host, mail_server.ports.smtp, "carol@localhost")
    send_welcome(mail_server.host, mail_server.ports.smtp, "carol@localhost")  # the retry

    assert len(mail_server.wait_for_messages("carol", 1)) == 1
