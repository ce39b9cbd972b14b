"""The wire form of a message: CRLF line ends (RFC 5322 §2.1), the header ending with a blank
line (RFC 5322 §2.1, §3.5).

Every message is stored and served in this form, so that sizes, offsets and part numbers mean
the same to POP3, IMAP, the store and the console.
"""

from __future__ import annotations


def to_wire(data: bytes) -> bytes:
    """Normalize line ends to CRLF (bare LF and bare CR both become CRLF)."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def header_end(wire: bytes) -> int:
    """Offset just past the blank line that ends the header (the whole length if none)."""
    if wire.startswith(b"\r\n"):
        return 2
    pos = wire.find(b"\r\n\r\n")
    return len(wire) if pos < 0 else pos + 4
