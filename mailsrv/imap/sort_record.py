"""What SORT and THREAD know of one message (RFC 5256 §3, RFC 5957 §2), kept in the cache.

A ``SortRecord`` is built once from the message's header (``from_header``) and stored in the
folder's message cache under ``CACHE_KEY``; afterwards SORT and THREAD work from the cache and
the folder listing (sizes, internal dates) alone and never read the message file again. The
string keys are already in the i;unicode-casemap form, so sorting compares them directly.
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass

from mailsrv.imap.base_subject import base_subject
from mailsrv.imap.collation import casemap_key
from mailsrv.message.addresses import Address, parse_addresses
from mailsrv.message.encoded_words import decode_header
from mailsrv.message.headers import parse_header_fields

#: The cache key; the number changes whenever the record's layout does.
CACHE_KEY = "imap.sort.1"
#: Message-IDs in References beyond this many are ignored (the oldest ones are kept).
MAX_REFERENCES = 100
_MSG_ID = re.compile(rb"<([^<>]*)>")
_WSP = re.compile(rb"[ \t\r\n]+")
_FIELDS = (b"date", b"subject", b"from", b"to", b"cc", b"message-id", b"in-reply-to", b"references")


@dataclass(frozen=True, slots=True)
class SortRecord:
    """One message's sort and thread keys.

    ``sent`` is the Date header in seconds since the epoch (None: missing or unreadable, the
    internal date stands in); ``subject`` the case-mapped base subject and ``reply`` whether
    the subject showed a reply or forward; ``from_``, ``to``, ``cc`` the case-mapped
    addr-mailbox of each field's first address, ``display_from``/``display_to`` the case-mapped
    display names (RFC 5957); ``message_id`` and ``parents`` (the References, or failing them
    the In-Reply-To, oldest first) drive THREAD=REFERENCES.
    """

    sent: float | None
    subject: str
    reply: bool
    from_: str
    to: str
    cc: str
    display_from: str
    display_to: str
    message_id: str | None
    parents: tuple[str, ...]

    def encode(self) -> bytes:
        return json.dumps(
            [
                self.sent,
                self.subject,
                self.reply,
                self.from_,
                self.to,
                self.cc,
                self.display_from,
                self.display_to,
                self.message_id,
                list(self.parents),
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> SortRecord | None:
        """The record ``encode`` wrote; None when the value is not one (then it is rebuilt)."""
        try:
            v = json.loads(data)
            return cls(
                None if v[0] is None else float(v[0]),
                str(v[1]),
                bool(v[2]),
                str(v[3]),
                str(v[4]),
                str(v[5]),
                str(v[6]),
                str(v[7]),
                None if v[8] is None else str(v[8]),
                tuple(str(p) for p in v[9]),
            )
        except (ValueError, TypeError, IndexError, KeyError):
            return None


def from_header(header: bytes) -> SortRecord:
    """The record of a message from its header (the bytes up to and with the blank line)."""
    first: dict[bytes, bytes] = {}
    for f in parse_header_fields(header)[0]:
        name = f.name.lower()
        if name in _FIELDS:
            first.setdefault(name, f.value)
    subject = base_subject(first.get(b"subject"))
    from_ = _first_address(first.get(b"from"))
    to = _first_address(first.get(b"to"))
    references = message_ids(first.get(b"references", b""))
    if not references:
        references = message_ids(first.get(b"in-reply-to", b""))[:1]
    own = message_ids(first.get(b"message-id", b""))
    return SortRecord(
        sent=sent_date(first.get(b"date")),
        subject=casemap_key(subject.text),
        reply=subject.reply,
        from_=_mailbox(from_),
        to=_mailbox(to),
        cc=_mailbox(_first_address(first.get(b"cc"))),
        display_from=_display(from_),
        display_to=_display(to),
        message_id=own[0] if own else None,
        parents=tuple(references[-MAX_REFERENCES:]),
    )


def sent_date(value: bytes | None) -> float | None:
    """A Date header value as seconds since the epoch (a date without a zone is UTC)."""
    if value is None:
        return None
    text = decode_header(value).strip()
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        return None
    if parsed[9] is None:
        parsed = (*parsed[:9], 0)
    try:
        return float(email.utils.mktime_tz(parsed))
    except (ValueError, OverflowError):
        return None


def message_ids(value: bytes) -> list[str]:
    """The ``<id>``s of a Message-ID, In-Reply-To or References value, white space removed;
    an id without an ``@`` is not a msg-id (RFC 5322 §3.6.4) and is skipped."""
    ids = []
    for m in _MSG_ID.finditer(value):
        ident = _WSP.sub(b"", m.group(1))
        if b"@" in ident:
            ids.append(ident.decode("utf-8", "replace"))
    return ids


def _first_address(value: bytes | None) -> Address | None:
    if value is None:
        return None
    found = parse_addresses(value)
    return found[0] if found else None


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", "replace")


def _mailbox(address: Address | None) -> str:
    """RFC 5256 §3: the addr-mailbox of the first address ("" when there is none)."""
    return "" if address is None else casemap_key(_text(address.mailbox))


def _display(address: Address | None) -> str:
    """RFC 5957 §2: the decoded display name, else ``mailbox@host`` (a group: its name)."""
    if address is None:
        return ""
    if address.name:
        name = decode_header(address.name).strip()
        if name:
            return casemap_key(name)
    spec = _text(address.mailbox)
    if address.host is not None:
        spec += "@" + _text(address.host)
    return casemap_key(spec)
