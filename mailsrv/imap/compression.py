"""COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951, no zlib header) in both directions.

``Deflate`` is the layer the connection puts between its socket (or TLS) and the IMAP core
once COMPRESS was answered OK: ``inflate`` turns what the client sent into command bytes,
``deflate`` turns one batch of responses into what goes on the wire, ending it with a sync
flush (RFC 4978 §4) so the client can decode every response as soon as it arrives, an IDLE
update or the tagged OK of a command alike. Bytes in, bytes out: no socket here.

Inflating is bounded: one call gives at most ``limit`` bytes and keeps the rest of the input
(``pending``), so a small stream that expands a thousandfold is fed to the core a piece at a
time, under the core's line and literal limits, never expanded all at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

#: Raw deflate: a window of 2**15 bytes and no zlib header or checksum (RFC 4978 §3).
WBITS = -15
#: Compression level: zlib's default, the usual trade of CPU for bandwidth.
LEVEL = 6
#: The most bytes one ``inflate`` call returns.
INFLATE_LIMIT = 256 * 1024


class CorruptStream(Exception):
    """The client's deflate stream cannot be decoded; the connection must end."""


class Deflate:
    """One connection's compressor and decompressor (see the module docstring)."""

    def __init__(self, level: int = LEVEL) -> None:
        self._out = zlib.compressobj(level, zlib.DEFLATED, WBITS)
        self._in = zlib.decompressobj(WBITS)
        self.bytes_in = self.bytes_out = 0  # on the wire (compressed)
        self.plain_in = self.plain_out = 0  # before compression / after decompression

    # -- client -> server ----------------------------------------------------------------

    def inflate(self, data: bytes, limit: int = INFLATE_LIMIT) -> bytes:
        """Decompress ``data`` (and input kept from earlier calls); at most ``limit`` bytes."""
        self.bytes_in += len(data)
        if self._in.eof:
            if data:
                raise CorruptStream("data after the end of the deflate stream")
            return b""
        try:
            out = self._in.decompress(self._in.unconsumed_tail + data, limit)
        except zlib.error as exc:
            raise CorruptStream(str(exc)) from None
        if self._in.eof and self._in.unused_data:
            raise CorruptStream("data after the end of the deflate stream")
        self.plain_in += len(out)
        return out

    @property
    def pending(self) -> bool:
        """Input is kept that the last ``inflate`` had no room for: call it again."""
        return bool(self._in.unconsumed_tail)

    @property
    def ended(self) -> bool:
        """The client finished its stream (it will send nothing more)."""
        return self._in.eof

    # -- server -> client ----------------------------------------------------------------

    def deflate(self, pieces: Iterable[bytes]) -> list[bytes]:
        """One batch of output, compressed and sync-flushed: the chunks to write, in order."""
        out: list[bytes] = []
        for piece in pieces:
            self.plain_out += len(piece)
            chunk = self._out.compress(piece)
            if chunk:
                out.append(chunk)
        out.append(self._out.flush(zlib.Z_SYNC_FLUSH))
        self.bytes_out += sum(len(c) for c in out)
        return out
