"""What the MIME parser reads: a message's bytes, or a read-only memory map of its file.

Both give the parser everything it uses: ``find``, slicing (to ``bytes``), ``len`` and regular
expression searches. ``count`` is the one thing a map lacks; ``count_lf`` stands in for it.
"""

from __future__ import annotations

import mmap

Readable = bytes | mmap.mmap


def count_lf(wire: Readable, start: int, end: int) -> int:
    """Line feeds in ``wire[start:end]`` (for a map: counted in a copy of that range only)."""
    if isinstance(wire, bytes):
        return wire.count(b"\n", start, end)
    return wire[start:end].count(b"\n")
