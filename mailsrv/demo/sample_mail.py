"""The messages the demo delivers: realistic, deterministic, one with an attachment."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime


def _message(sender: str, subject: str, body: str, when: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Alice <alice@localhost>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 9, when, tzinfo=UTC))
    msg["Message-ID"] = f"<demo-{when}@mailsrv.localhost>"
    msg.set_content(body)
    return msg


def sample_messages() -> list[EmailMessage]:
    """Three messages: a note, a report with a PDF attachment, a newsletter."""
    note = _message(
        "Bob <bob@example.org>",
        "Lunch on Friday?",
        "Hi Alice,\n\nShall we try the new place on Friday at noon?\n\nBob\n",
        1,
    )
    report = _message(
        "Carol <carol@example.org>",
        "Quarterly report",
        "Hello Alice,\n\nThe report is attached. Numbers look good.\n\nCarol\n",
        2,
    )
    pdf = b"%PDF-1.4\n" + b"% mailsrv demo attachment\n" * 400 + b"%%EOF\n"
    report.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    news = _message(
        "News <news@example.org>",
        "This week in mail servers",
        "POP3 turns 38. IMAP keeps everything on the server. Read on!\n",
        3,
    )
    return [note, report, news]


def late_message() -> EmailMessage:
    return _message(
        "Dave <dave@example.org>",
        "Leave it on the server, please",
        "This one should stay on the server after POP3 downloads it.\n",
        4,
    )


#: The EICAR anti-virus test file (harmless; every scanner reports it), kept base64-encoded so
#: this source file itself does not trip a scanner.
EICAR_BASE64 = (
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo="
)
#: SpamAssassin's GTUBE test string: its rule alone scores 1000.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def infected_message() -> EmailMessage:
    """An "invoice" whose attachment is the EICAR test file."""
    msg = _message(
        "Billing <billing@example.net>",
        "Your invoice",
        "Please open the attached invoice.\n",
        5,
    )
    msg.add_attachment(
        base64.b64decode(EICAR_BASE64),
        maintype="application",
        subtype="octet-stream",
        filename="invoice.com",
    )
    return msg


def spam_message() -> EmailMessage:
    """An offer carrying GTUBE, which SpamAssassin scores as certain spam."""
    return _message(
        "Deals <deals@example.net>",
        "You have won!",
        f"Claim your prize today.\n\n{GTUBE}\n",
        6,
    )
