"""Messages in and out of a test server: ``StoredMessage`` (what a test reads back) and
``message_bytes`` (what it may hand in)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from mailsrv.scan.scan_fields import read_scan
from mailsrv.scan.verdict import ScanResult
from mailsrv.store.base import INBOX


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as the store holds it, parsed (``email.policy.default``)."""

    uid: int
    flags: frozenset[str]
    raw: bytes  # wire form, CRLF line ends
    folder: str = INBOX
    internal_date: float = 0.0
    message: EmailMessage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        object.__setattr__(self, "message", parsed)

    @property
    def subject(self) -> str | None:
        value = self.message.get("Subject")
        return None if value is None else str(value)

    @property
    def sender(self) -> str | None:
        """The address in ``From:`` (``bob@example.com``), or None without one."""
        value = self.message.get("From")
        return None if value is None else parseaddr(str(value))[1] or None

    @property
    def recipients(self) -> list[str]:
        """Every address in ``To:``, ``Cc:`` and ``Bcc:``, in that order."""
        values = [str(v) for name in ("To", "Cc", "Bcc") for v in self.message.get_all(name, [])]
        return [addr for _, addr in getaddresses(values) if addr]

    @property
    def scan(self) -> ScanResult | None:
        """What scanning at delivery found (``scan.spam_score``, ``"GTUBE" in scan.rules``,
        ``scan.virus``), read from the message's ``X-Spam-*`` and ``X-Virus-Status`` fields;
        None for a message delivered without scanning."""
        return read_scan(self.raw)

    @property
    def text(self) -> str:
        """The plain-text body (the first text/plain part, "\\n" line ends), or "" without one."""
        part = self.message.get_body(preferencelist=("plain",))
        if part is None:
            return ""
        content = part.get_content()
        return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def message_bytes(message: bytes | str | Message) -> bytes:
    """A message given as bytes, str or ``email.message`` object, as bytes."""
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message)
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, Message):
        return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    raise TypeError(f"a message is bytes, str or email.message.Message, not {type(message)!r}")
