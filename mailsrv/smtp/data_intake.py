"""``DataIntake``: a connection's bytes routed between aiosmtpd's command loop and our DATA reader.

aiosmtpd reads DATA one ``readuntil`` per line. Instead, what the transport delivers is looked at
here first (``IngressSMTP.data_received``): command lines go on to aiosmtpd's stream as before,
up to and including a ``DATA`` line; what follows is held back, because it is the message if
DATA is accepted and more commands if it is refused. ``IngressSMTP.smtp_DATA`` then either
``release``s it (a refusal) or reads the ``message`` from it through a ``DotReader`` in whole
chunks; the bytes after the final dot go back through ``receive``, so pipelined commands reach
aiosmtpd's loop in order.

This is sound because aiosmtpd's stream then holds at most one ``DATA`` line, its last, and
nothing but ``smtp_DATA`` reads it, except an AUTH exchange (``challenge_auth`` reads response
lines from the stream): a connection where that might have happened ``give_up``s, and its later
messages take aiosmtpd's own line-by-line DATA.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from mailsrv.smtp.data_stream import DotReader, data_command_end

#: Held-back bytes beyond this (a client sending far ahead of the replies) pause reading.
HOLD_LIMIT = 1024 * 1024


class DataIntake:
    """Route one connection's bytes; ``forward`` hands bytes to aiosmtpd's stream."""

    def __init__(
        self,
        forward: Callable[[bytes], None],
        transport: Callable[[], asyncio.BaseTransport | None],
    ) -> None:
        self._forward = forward
        self._transport = transport
        self._partial = b""  # the command line not yet ended
        self._held: bytearray | None = None
        self._reader: DotReader | None = None
        self._done: asyncio.Future[None] | None = None
        self._bypass = False
        self._paused = False

    @property
    def holding(self) -> bool:
        """A DATA line went to aiosmtpd and what followed it is held back."""
        return self._held is not None

    def receive(self, data: bytes) -> None:
        """Bytes from the client, in order."""
        if self._reader is not None:
            self._feed_reader(data)
        elif self._held is not None:
            self._held += data
            self._pause_if_full()
        elif self._bypass:
            self._forward(data)
        else:
            end, self._partial = data_command_end(data, self._partial)
            if end == -1:
                self._forward(data)
            else:
                self._forward(data[:end])
                self._held = bytearray(data[end:])
                self._pause_if_full()

    def release(self) -> None:
        """DATA was refused: what was held back is commands after all."""
        held = self._take_held()
        if held:
            self.receive(held)

    def give_up(self) -> None:
        """An AUTH exchange may have read the DATA line: hand everything on, scan no more."""
        self._bypass = True
        self.release()

    def drop(self) -> None:
        """TLS has started: plaintext sent before it is discarded (RFC 3207 §4.2), held or not."""
        self._take_held()
        self._partial = b""

    async def message(self, size_limit: int | None, line_limit: int) -> DotReader:
        """The message after the DATA line, read to its final dot (``DotReader.error`` says
        whether it was refused)."""
        reader = DotReader(size_limit, line_limit)
        self._done = asyncio.get_running_loop().create_future()
        self._reader = reader
        try:
            held = self._take_held()
            if held:
                self._feed_reader(held)
            await self._done
        finally:
            self._reader = None
            self._done = None
        return reader

    def _feed_reader(self, data: bytes) -> None:
        reader = self._reader
        if reader is None or not reader.feed(data):
            return
        self._reader = None
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        if reader.rest:
            self.receive(reader.rest)

    def _take_held(self) -> bytes:
        held, self._held = self._held, None
        if self._paused:
            self._paused = False
            transport = self._transport()
            if transport is not None and not transport.is_closing():
                cast(asyncio.ReadTransport, transport).resume_reading()
        return bytes(held) if held else b""

    def _pause_if_full(self) -> None:
        if self._held is None or len(self._held) <= HOLD_LIMIT or self._paused:
            return
        transport = self._transport()
        if transport is not None and not transport.is_closing():
            self._paused = True
            cast(asyncio.ReadTransport, transport).pause_reading()
