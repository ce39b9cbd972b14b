"""``read_message``: a DATA transfer from aiosmtpd's stream in large pieces, through ``DataReader``.

The pieces come from ``StreamReader.readuntil(CRLF . CRLF)`` (as much as the stream's limit
holds at once) and ``readexactly``; neither reads past the final dot, so a command the client
pipelined after it stays in the stream for aiosmtpd's command loop.
"""

from __future__ import annotations

import asyncio

from mailsrv.smtp.data_reader import TERMINATOR, DataReader


async def read_message(reader: asyncio.StreamReader, transfer: DataReader) -> bool:
    """Feed ``transfer`` until the final dot; False when the client went away before it."""
    while not transfer.done:
        want = transfer.next_read()
        try:
            if want:
                piece = await reader.readexactly(want)
            else:
                piece = await reader.readuntil(TERMINATOR)
        except asyncio.LimitOverrunError as exc:
            # No final dot within the stream's limit: take what is there, keep looking.
            piece = await reader.read(max(exc.consumed, 1))
        except asyncio.IncompleteReadError:
            return False
        if not piece:  # end of stream
            return False
        if transfer.feed(piece) != len(piece):  # next_read() never asks past the final dot
            raise RuntimeError("DATA read past the end of the message")
    return True
