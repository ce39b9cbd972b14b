"""``Stream``: one client connection as an ``asyncio.Protocol`` with read, write, drain, close and
a STARTTLS upgrade (POP3 STLS, IMAP STARTTLS) that uses only asyncio's public API.

Why not asyncio's streams: after ``STLS``/``STARTTLS`` a client may already have pipelined more
plaintext, which must be thrown away, never run as if it had come over TLS (RFC 2595 §4,
RFC 9051 §6.2.1, RFC 3207 §4.2). A ``StreamReader`` gives no public way to drop what it has
buffered; here the buffer is ours. ``start_tls`` clears it and calls
``loop.start_tls(transport, self, sslcontext, server_side=True)``, which pauses the plaintext
transport before it yields, so nothing read in the clear after the upgrade command reaches a
session.

Back-pressure both ways: reading pauses while ``MAX_BUFFER`` bytes wait unread; ``drain``
waits while the transport's write buffer is above its high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

from mailsrv.net.listen import create_server

#: Unread input held before the transport stops reading (a command plus a large literal chunk).
MAX_BUFFER = 1024 * 1024
#: How long ``close_and_wait`` waits for the peer to acknowledge the close.
CLOSE_WAIT = 1.0

Handler = Callable[["Stream"], Coroutine[Any, Any, None]]


class Stream(asyncio.Protocol):
    """One connection; ``serve`` (an ``asyncio.Server`` protocol factory) runs ``handler`` on it."""

    def __init__(self, handler: Handler | None = None) -> None:
        self._handler = handler
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._eof = False
        self._lost: Exception | None = None
        self._closed = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._done: asyncio.Future[None] | None = None
        #: The task running the handler (cancelled by the listener on shutdown).
        self.task: asyncio.Task[None] | None = None
        #: Called each time a ``read`` has to wait for the peer (the session is between inputs).
        self.on_wait: Callable[[], None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._done = asyncio.get_running_loop().create_future()
        if self._handler is not None:
            self.task = asyncio.get_running_loop().create_task(self._handler(self))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._wake()
        if len(self._buf) > MAX_BUFFER and not self._paused_reading and self._transport:
            self._paused_reading = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport (TLS cannot half-close anyway)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._eof = True
        self._lost = exc
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the connection was lost"))
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading ---------------------------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport:
        if self._transport is None:
            raise ConnectionError("not connected")
        return self._transport

    @property
    def reading(self) -> bool:
        """True while a ``read`` waits for the peer."""
        return self._read_waiter is not None

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" once the peer has closed and everything was read."""
        while not self._buf:
            if self._eof:
                return b""
            waiter = asyncio.get_running_loop().create_future()
            self._read_waiter = waiter
            if self.on_wait is not None:
                self.on_wait()
            try:
                await waiter
            finally:
                if self._read_waiter is waiter:
                    self._read_waiter = None
        data = bytes(self._buf[:n])
        del self._buf[:n]
        if self._paused_reading and len(self._buf) <= MAX_BUFFER // 2 and self._transport:
            self._paused_reading = False
            self._transport.resume_reading()
        return data

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        if self._transport is not None and not self._closed:
            self._transport.writelines(chunks)

    async def drain(self) -> None:
        """Wait while the transport holds more than its high-water mark of our output."""
        if self._closed:
            raise ConnectionResetError("the connection was lost")
        if not self._paused_writing:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiter = waiter
        await waiter

    def is_closing(self) -> bool:
        return self._closed or self._transport is None or self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    # -- TLS and closing -------------------------------------------------------------------

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Upgrade to TLS as the server; plaintext received after the upgrade command is gone."""
        self._buf.clear()
        if self._paused_reading and self._transport is not None:
            self._paused_reading = False
            self._transport.resume_reading()
        loop = asyncio.get_running_loop()
        new = await loop.start_tls(self.transport, self, context, server_side=True)
        if new is None:  # the loop gives None only for a transport already closing
            raise ConnectionResetError("the connection closed during the TLS handshake")
        self._transport = new

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        if self._done is not None:
            await asyncio.shield(self._done)

    async def close_and_wait(self) -> None:
        """Close and wait (at most ``CLOSE_WAIT``) until the transport is gone."""
        with contextlib.suppress(Exception):
            self.close()
            await asyncio.wait_for(self.wait_closed(), CLOSE_WAIT)


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    listen_sockets: dict[int, socket.socket] | None = None,
) -> asyncio.Server:
    """Listen on ``host:port`` (or its socket in ``listen_sockets``, see ``mailsrv.net.listen``)
    and run ``handler`` on a ``Stream`` per connection."""
    return await create_server(
        listen_sockets or {}, lambda: Stream(handler), host, port, ssl_context=ssl_context
    )
