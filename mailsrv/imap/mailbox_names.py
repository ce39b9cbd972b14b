"""Folder names on the wire: modified UTF-7 (RFC 3501 §5.1.3) or UTF-8 (RFC 6855, RFC 9051 §5.1).

The store speaks Unicode names with ``/`` as the delimiter. Before ``ENABLE UTF8=ACCEPT`` a name
on the wire is modified UTF-7; a client that sends raw UTF-8 anyway is understood too (the bytes
cannot be mistaken for modified UTF-7, which is pure ASCII). After it, names are UTF-8 both ways.
"""

from __future__ import annotations

from mailsrv.imap.strings import string
from mailsrv.store import mutf7


class BadMailboxName(ValueError):
    """A name that is neither valid modified UTF-7 nor UTF-8."""


def decode_name(raw: bytes, *, utf8: bool) -> str:
    """The store name for a wire name."""
    if utf8 or not raw.isascii():
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadMailboxName("Mailbox name is not valid UTF-8") from None
    try:
        return mutf7.decode(raw.decode("ascii"))
    except ValueError:
        raise BadMailboxName("Mailbox name is not valid modified UTF-7") from None


def encode_name(name: str, *, utf8: bool) -> bytes:
    """The wire form of a store name, as a quoted string or literal."""
    raw = name.encode("utf-8") if utf8 else mutf7.encode(name).encode("ascii")
    return string(raw, utf8=utf8)
