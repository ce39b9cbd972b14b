"""POP3 versus IMAP on one Maildir, in one screen of code.

Run it: `python examples/pop_vs_imap.py` (starts its own server on ephemeral ports).
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
import tempfile
from email.message import EmailMessage
from pathlib import Path

from mailsrv import Config, MailServer


def send(port: int, subject: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bob@example.org", "alice@localhost", subject
    msg.set_content("Hello Alice!")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg)


def imap_count(port: int) -> int:
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login("alice", "any-password")
    _, data = imap.select("INBOX")
    imap.logout()
    return int(data[0] or 0)


def pop3_download_and_delete(port: int) -> int:
    pop = poplib.POP3("127.0.0.1", port)
    pop.user("alice")
    pop.pass_("any-password")
    count, _ = pop.stat()
    for num in range(1, count + 1):
        pop.retr(num)  # download ...
        pop.dele(num)  # ... and mark for deletion
    pop.quit()  # deletion happens here, at QUIT
    return count


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(maildir=Path(tmp), dev=True, tls=False, http_enabled=False)
        async with MailServer(config.with_ephemeral_ports()) as server:
            p = server.ports
            assert p.smtp and p.imap and p.pop3
            for subject in ("one", "two", "three"):
                await asyncio.to_thread(send, p.smtp, subject)
            print("IMAP sees", await asyncio.to_thread(imap_count, p.imap), "messages")
            print("POP3 downloaded", await asyncio.to_thread(pop3_download_and_delete, p.pop3))
            print("IMAP now sees", await asyncio.to_thread(imap_count, p.imap), "messages")


if __name__ == "__main__":
    asyncio.run(main())
