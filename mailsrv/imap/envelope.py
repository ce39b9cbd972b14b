"""FETCH ENVELOPE (RFC 3501 §7.4.2, RFC 9051 §7.5.2).

Strings are the raw header bytes (folding removed, RFC 2047 words left encoded, as Dovecot
sends them); Sender and Reply-To fall back to From; absent fields are NIL.
"""

from __future__ import annotations

import re

from mailsrv.imap.strings import literal, quote_string
from mailsrv.message.addresses import Address, parse_addresses
from mailsrv.message.structure import MimePart

_NOT_QUOTED = re.compile(rb'[\r\n\0"\\\\]')
_ADDRESS_FIELDS = ("from", "sender", "reply-to", "to", "cc", "bcc")
_ADDRESS_KEYS = tuple((name, name.encode()) for name in _ADDRESS_FIELDS)
#: Distinct address-list values remembered before the memo starts over.
_MEMO_MAX = 4096
#: Longer values (big recipient lists) are parsed every time rather than remembered.
_MEMO_VALUE_MAX = 512
_ADDRESSES_DONE: dict[bytes, bytes] = {}


def envelope_string(value: bytes | None, *, folded: bool = False) -> bytes:
    """An nstring as Dovecot writes ENVELOPE values: quoted, or a literal when the value has
    8-bit bytes, NUL, ``"`` or ``\\`` or was folded (no escaping, no length limit)."""
    if value is None:
        return b"NIL"
    if not folded and value.isascii() and not _NOT_QUOTED.search(value):
        return b'"' + value + b'"'  # the common case, without a per-byte loop
    quoted = None if folded else quote_string(value, limit=None, escape=False)
    return literal(value) if quoted is None else quoted


def unstructured(value: bytes | None) -> bytes:
    """An unstructured header value for ENVELOPE: unfolded, leading blanks removed.

    A value that was folded goes out as a literal, like Dovecot does; a value whose first
    line is empty (``In-Reply-To:`` CRLF TAB ``<id>``) is not counted as folded.
    """
    if value is None:
        return b"NIL"
    value = value.lstrip(b" \t")
    if value.startswith(b"\r\n"):
        value = value[2:]
    elif value.startswith(b"\n"):
        value = value[1:]
    folded = b"\n" in value
    return envelope_string(value.replace(b"\r", b"").replace(b"\n", b""), folded=folded)


def address_list(addresses: list[Address]) -> bytes:
    if not addresses:
        return b"NIL"
    items = (
        b"(" + b" ".join(envelope_string(x) for x in (a.name, a.adl, a.mailbox, a.host)) + b")"
        for a in addresses
    )
    return b"(" + b"".join(items) + b")"


def addresses(value: bytes | None) -> bytes:
    """An address-list header value as ENVELOPE sends it (``NIL`` when it has none).

    Remembered per distinct value: in a mailbox the same few senders and the user's own address
    come back in message after message.
    """
    if value is None:
        return b"NIL"
    if len(value) > _MEMO_VALUE_MAX:
        return address_list(parse_addresses(value))
    done = _ADDRESSES_DONE.get(value)
    if done is None:
        if len(_ADDRESSES_DONE) >= _MEMO_MAX:
            _ADDRESSES_DONE.clear()
        done = _ADDRESSES_DONE[value] = address_list(parse_addresses(value))
    return done


def envelope_fields(part: MimePart) -> list[bytes]:
    """The ten ENVELOPE members, each already encoded."""
    first: dict[bytes, bytes] = {}  # the first value of each field (lower-case name)
    for f in part.fields:
        first.setdefault(f.name.lower(), f.value)
    lists = {name: addresses(first.get(key)) for name, key in _ADDRESS_KEYS}
    for fallback in ("sender", "reply-to"):
        if lists[fallback] == b"NIL":
            lists[fallback] = lists["from"]
    return [
        unstructured(first.get(b"date")),
        unstructured(first.get(b"subject")),
        *(lists[name] for name in _ADDRESS_FIELDS),
        unstructured(first.get(b"in-reply-to")),
        unstructured(first.get(b"message-id")),
    ]


def envelope(part: MimePart) -> bytes:
    """The ENVELOPE of a message (the root part, or an encapsulated message/rfc822)."""
    return b"(" + b" ".join(envelope_fields(part)) + b")"
