"""One IMAP connection on asyncio: read, feed the core, run the session, write (RFC 9051 §5.4).

The loop reads, hands the bytes to the session's core and lets ``dispatch.run_ready`` act on
every complete event (the same loop the tests' harness runs) with injected faults applied; it
writes through a buffered sink that waits for the peer when too much is queued, upgrades to TLS
after STARTTLS, puts COMPRESS=DEFLATE (``compression.Deflate``, RFC 4978) between the stream
and the core after COMPRESS (over TLS too: deflate sits above it), and ends the connection
after BYE or when the peer stays silent past the idle timeout. While idling, store updates
reach the socket without this loop (the fan-out writes through ``SocketSink.push``, compressed
once COMPRESS is on); it only wakes when the session signals that it must send them itself
(slow peer, mailbox gone). With NOTIFY (RFC 5465) the loop waits for that signal between
commands too, so that the session can speak while the client says nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.imap.commands import Command, command_name
from mailsrv.imap.compression import CorruptStream, Deflate
from mailsrv.imap.dispatch import run_ready
from mailsrv.imap.server_state import ImapServerState
from mailsrv.imap.session import ImapSession
from mailsrv.net import faults, timeouts
from mailsrv.net.stream import Stream

log = logging.getLogger("mailsrv.imap")
#: Bytes read from the socket at a time.
READ_SIZE = 256 * 1024
#: Pieces of output at least this big are written as they are, not copied into a join.
BIG_PIECE = 32 * 1024


class SocketSink:
    """The session's sink: buffers responses, writes them in one go, waits while the peer lags."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.buf: list[bytes] = []
        self.drop_after: int | None = None  # fault injection: close after this many bytes
        #: After COMPRESS: each batch written is compressed and sync-flushed.
        self.deflate: Deflate | None = None

    def write(self, data: bytes) -> None:
        self.buf.append(data)

    def push(self) -> bool:
        """Send what is buffered now, without waiting; False when ``drain`` must do it (the
        peer lags behind, or a fault is armed)."""
        if not self.buf:
            return True
        c = self.conn
        transport = c.transport
        if self.drop_after is not None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > c.ctx.config.limits.output_buffer:
            return False
        data = self.buf[0] if len(self.buf) == 1 else b"".join(self.buf)
        self.buf.clear()
        c.ctx.metrics.sent("imap", len(data))
        if self.deflate is None:
            transport.write(data)
        else:
            transport.writelines(self.deflate.deflate((data,)))
        if c.ctx.tracer.enabled:
            c.shared.trace_later(c.trace_pushed, data)
        return True

    async def drain(self) -> None:
        if not self.buf:
            return
        c = self.conn
        if self.drop_after is not None:
            data = b"".join(self.buf)
            self.buf.clear()
            data = data[: self.drop_after]
            self.drop_after -= len(data)
            c.ctx.metrics.sent("imap", len(data))
            c.ctx.tracer.record(c.info.id, "imap", c.session.user, "S", data)
            if self.deflate is None:
                c.writer.write(data)
            else:
                c.writer.writelines(self.deflate.deflate((data,)))
            if self.drop_after == 0:
                raise ConnectionAbortedError("fault injection: drop")
        else:
            pieces = self.buf if len(self.buf) == 1 else _coalesce(self.buf)
            self.buf = []
            c.ctx.metrics.sent("imap", sum(map(len, pieces)))
            if c.ctx.tracer.enabled:
                # Given in pieces, so a message literal is summarized, never copied.
                c.ctx.tracer.record_response(c.info.id, "imap", c.session.user, pieces)
            if self.deflate is not None:
                c.writer.writelines(self.deflate.deflate(pieces))
            elif len(pieces) == 1:
                c.writer.write(pieces[0])
            else:
                c.writer.writelines(pieces)
        limits = c.ctx.config.limits
        transport = c.writer.transport
        if transport.get_write_buffer_size() > limits.output_buffer:
            async with asyncio.timeout(timeouts.drain(limits, "imap")):
                await c.writer.drain()


def _coalesce(pieces: list[bytes]) -> list[bytes]:
    """Small pieces joined into runs, big ones (message literals) passed on as they are: the
    transport sends them with one writev and no copy of the message."""
    out: list[bytes] = []
    run: list[bytes] = []
    for piece in pieces:
        if len(piece) >= BIG_PIECE:
            if run:
                out.append(run[0] if len(run) == 1 else b"".join(run))
                run = []
            out.append(piece)
        else:
            run.append(piece)
    if run:
        out.append(run[0] if len(run) == 1 else b"".join(run))
    return out


class Connection:
    """The read-dispatch-write loop of one client."""

    def __init__(
        self,
        ctx: ServerContext,
        reader: Stream,
        writer: Stream,
        info: SessionInfo,
        implicit_tls: bool,
        shared: ImapServerState,
    ) -> None:
        self.ctx, self.reader, self.writer, self.info = ctx, reader, writer, info
        self.shared = shared
        self.out = SocketSink(self)
        self.transport = writer.transport
        self.session = ImapSession(
            ctx, shared, info, self.out, tls=implicit_tls, starttls=not implicit_tls, compress=True
        )
        #: After COMPRESS: what the client sends is inflated before the core sees it.
        self.deflate: Deflate | None = None

    def trace_pushed(self, data: bytes) -> None:
        """Trace output the IDLE fan-out wrote (``ImapServerState.trace_later``)."""
        self.ctx.tracer.record(self.info.id, "imap", self.session.user, "S", data)

    def _timeout(self) -> float:
        logged_in = self.session.user is not None
        return timeouts.silence(self.ctx.config.limits, "imap", logged_in=logged_in)

    async def run(self) -> None:
        s = self.session
        self.out.write(s.greeting())
        await self.out.drain()
        while True:
            await run_ready(s, self._fault)
            await self.out.drain()
            if s.core.closed:
                return
            tls = self.ctx.tls_for("imap") if s.core.tls_pending else None
            if tls is not None:
                await self.writer.start_tls(tls)
                self.transport = self.writer.transport
                s.tls_started()
                continue
            if s.core.compression_pending:
                self.deflate = self.out.deflate = Deflate()
                if not self._feed(s.core.compression_established()):
                    return
                continue
            if not await self._read():
                return

    def _feed(self, data: bytes) -> bool:
        """Hand input to the core (inflated first once COMPRESS is on); False means close."""
        deflate = self.deflate
        if deflate is not None:
            try:
                data = deflate.inflate(data)
            except CorruptStream as exc:
                log.info(
                    "%s: closing: corrupt COMPRESS stream from the client: %s", self.info.id, exc
                )
                return False
        if data:
            self.ctx.metrics.received("imap", len(data))
            self.session.core.receive_data(data)
        return True

    async def _read(self) -> bool:
        """Wait for input (and, while idling or under NOTIFY, for the session's signal); False
        means close."""
        if self.deflate is not None and self.deflate.pending:
            return self._feed(b"")  # the rest of what the last read inflated to
        if not (self.session.idling or self.session.wants_push):
            # The common case, once per command: a plain read under a deadline (no task, no
            # asyncio.wait bookkeeping).
            try:
                async with asyncio.timeout(self._timeout()):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                return await self._autologout()
            if not data:
                return False
            return self._feed(data)
        read: asyncio.Future[bytes] = asyncio.ensure_future(self.reader.read(READ_SIZE))
        waits: set[asyncio.Future[Any]] = {read}
        wake = self.session.idle_signal()
        waits.add(wake)
        done, _ = await asyncio.wait(
            waits, timeout=self._timeout(), return_when=asyncio.FIRST_COMPLETED
        )
        if read not in done:
            read.cancel()
        if wake.done():
            await self.session.idle_push()
            await self.out.drain()
        if read not in done:
            if not done:
                return await self._autologout()
            return True
        data = read.result()
        if not data:
            return False
        return self._feed(data)

    async def _autologout(self) -> bool:
        log.info("%s: autologout after %.0f s without a command", self.info.id, self._timeout())
        self.out.write(b"* BYE Autologout; idle for too long\r\n")
        await self.out.drain()
        return False

    async def _fault(self, cmd: Command) -> bool:
        """Apply an injected fault; True when the command must not run."""
        if not self.ctx.faults.armed:
            return False
        mailbox = getattr(cmd, "mailbox", "")  # what a fault's ``match`` sees on IMAP
        argument = mailbox.decode("utf-8", "replace") if isinstance(mailbox, bytes) else ""
        name = command_name(cmd)
        user = self.session.user
        fault = await faults.before_command(self.ctx.faults, "imap", name, argument, user)
        if fault is None:
            return False
        if isinstance(fault, faults.Reply):
            self.out.write(f"{cmd.tag} {fault.text}\r\n".encode())
            return True
        if fault.after_bytes is None:
            raise ConnectionAbortedError("fault injection: drop")
        self.out.drop_after = fault.after_bytes
        return False
