"""The asyncio adapter for POP3: port 110 with STLS (RFC 2595) and 995 with implicit TLS (RFC 8314).

It reads, feeds the session, writes each batch of answers with one ``writelines`` (a message
body goes out as the store gave it, not copied), upgrades on
STLS, enforces the timeouts and connection limits, and on ``close()`` tells idle sessions the
server is going away. Back-pressure: the transport buffer is bounded, so a client that stops
reading only pauses its own session (until the idle timeout cuts it off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailsrv.context import ServerContext
from mailsrv.net import admission

if TYPE_CHECKING:
    from mailsrv.pop3.session import Pop3Session

log = logging.getLogger("mailsrv.pop3")

#: Read size: many pipelined commands fit; lines are limited by the core anyway.
READ_SIZE = 64 * 1024
#: Transport buffer high-water mark: drain() waits above this (one RETR may exceed it).
WRITE_HIGH_WATER = 256 * 1024
#: How long ``close()`` waits for busy sessions to finish their command.
SHUTDOWN_GRACE = 5.0


class _Connection:
    __slots__ = ("reading", "session", "stopping", "task", "writer")

    def __init__(self, session: Pop3Session, writer: asyncio.StreamWriter) -> None:
        self.session = session
        self.writer = writer
        self.task: asyncio.Task[None] | None = asyncio.current_task()
        self.reading = False
        self.stopping = False


class Pop3Listener:
    def __init__(self, ctx: ServerContext, implicit_tls: bool) -> None:
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self._server: asyncio.Server | None = None
        self._port = 0
        self._conns: set[_Connection] = set()

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The protocol modules load with the first connection, not at server start.
        from mailsrv.pop3.responses import encode
        from mailsrv.pop3.session import REFUSALS, Pop3Session

        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if peername else "?"
        refused = admission.refusal(self.ctx, peer, "pop3")
        if refused is not None:
            writer.write(encode(REFUSALS[refused]))
            await _close(writer)
            return
        info = self.ctx.sessions.open("pop3", peer, self.port, tls=self.implicit_tls)
        session = Pop3Session(self.ctx, info, tls=self.implicit_tls, stls=not self.implicit_tls)
        conn = _Connection(session, writer)
        self._conns.add(conn)
        self.ctx.tracer.record(info.id, "pop3", None, "*", f"connect from {peer}")
        try:
            await self._serve(conn, reader)
        except asyncio.CancelledError:
            if not conn.stopping:
                raise
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.debug("%s: connection lost: %r", info.id, exc)
        except Exception:
            log.exception("%s: adapter error", info.id)
        finally:
            self._conns.discard(conn)
            await session.close()
            self.ctx.tracer.record(info.id, "pop3", session.user, "*", "closed")
            await _close(writer)

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        session, writer = conn.session, conn.writer
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        from mailsrv.pop3.session import AUTOLOGOUT, SHUTDOWN

        await self._write(conn, (session.greeting(),))
        while not conn.stopping:
            conn.reading = True
            try:
                async with asyncio.timeout(session.timeout):  # no task per read, as wait_for has
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                log.info("%s: autologout after %.0f s idle", conn.session.info.id, session.timeout)
                await self._write(conn, (session.notice(AUTOLOGOUT),))
                return
            except asyncio.CancelledError:
                if conn.stopping:
                    await self._write(conn, (session.notice(SHUTDOWN),))
                raise
            finally:
                conn.reading = False
            if not data:
                return  # dropped: nothing is expunged
            out = await session.feed(data)
            while out.more:
                await self._write(conn, out.chunks)
                out = await session.feed(b"")
            if out.start_tls:
                await self._upgrade(conn, reader, out.data)
                continue
            await self._write(conn, out.chunks)
            if out.close:
                return
        await self._write(conn, (session.notice(SHUTDOWN),))

    async def _upgrade(self, conn: _Connection, reader: asyncio.StreamReader, reply: bytes) -> None:
        """STLS: send ``+OK`` and start the handshake without yielding in between.

        Any await here would let the client's ClientHello land in the plaintext reader; and any
        plaintext already buffered there was pipelined after STLS and must go (RFC 2595 §4).
        """
        assert self.ctx.tls is not None  # noqa: S101 - STLS is offered only with TLS
        conn.writer.write(reply)
        buffered = getattr(reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        await conn.writer.start_tls(self.ctx.tls)
        conn.writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        conn.session.tls_started()

    async def _write(self, conn: _Connection, chunks: Sequence[bytes]) -> None:
        writer = conn.writer
        if writer.is_closing():
            raise ConnectionResetError("the client closed the connection")
        if not chunks:
            return
        writer.writelines(chunks)
        # drain() only waits above the high-water mark; below it, skip its cost entirely.
        if writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            async with asyncio.timeout(conn.session.timeout):
                await writer.drain()

    async def close(self) -> None:
        """Stop accepting; idle sessions are told at once, busy ones after their command."""
        if self._server is not None:
            self._server.close()
        for conn in tuple(self._conns):
            conn.stopping = True
            if conn.reading and conn.task is not None:
                conn.task.cancel()
        tasks = [conn.task for conn in self._conns if conn.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def start_pop3(
    ctx: ServerContext, host: str, port: int, *, implicit_tls: bool
) -> Pop3Listener:
    """Serve POP3 on ``host:port``; ``implicit_tls`` for POP3S (995)."""
    listener = Pop3Listener(ctx, implicit_tls)
    ssl_ctx = ctx.tls if implicit_tls else None
    if implicit_tls and ssl_ctx is None:
        raise ValueError("POP3S needs a TLS context")
    server = await asyncio.start_server(listener._handle, host, port, ssl=ssl_ctx)
    listener._server = server
    listener._port = int(server.sockets[0].getsockname()[1])
    return listener
