"""Parsing a message file's MIME structure through a read-only memory map (no copy of it).

A big message is nearly all attachment, and BODYSTRUCTURE needs of an attachment only where it
ends: the next boundary delimiter, found by a byte search (``delimiters.find_delimiter``) that
runs over the page cache's own pages through the map. Reading the file instead would first copy
every byte into a new ``bytes`` object (and the kernel would zero those fresh pages first).

``structure.parse_message`` takes a ``bytes`` or an ``mmap``: the two support the same
``find``, slicing and regular-expression searches, and the parser uses nothing else of them
(``count_lf`` counts the lines of a text part through a copy of that part only).

Mapping is only for files in wire form (CRLF line ends: ``S=`` equals ``W=``), and only for
Maildir files, which are never rewritten in place: a file truncated by someone else while it is
mapped would fault (SIGBUS) rather than read short.
"""

from __future__ import annotations

import mmap
import os

from mailsrv.message.structure import MimePart, parse_message


def parse_file(path: str) -> MimePart:
    """The MIME structure of the message file at ``path`` (already in wire form), parsed
    through a memory map; the same tree ``parse_message`` gives for the file's bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size == 0:  # an empty file cannot be mapped
            return parse_message(b"")
        mapped = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    try:
        return parse_message(mapped)
    finally:
        try:
            mapped.close()
        except BufferError:  # something still looks into it: the map goes with its last user
            pass
