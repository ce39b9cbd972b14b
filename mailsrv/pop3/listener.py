"""The asyncio adapter for POP3: port 110 with STLS (RFC 2595) and 995 with implicit TLS (RFC 8314).

It reads, feeds the session, writes each batch of answers with one ``writelines`` (a message
body goes out as the store gave it, not copied), upgrades on STLS (``mailsrv.net.stream``),
enforces the timeouts and admission (``mailsrv.net.admission``), and on ``close()`` shuts down
gracefully (``mailsrv.net.shutdown``). Back-pressure: the transport buffer is bounded, so a
client that stops reading only pauses its own session (until the idle timeout cuts it off).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailsrv.context import ServerContext
from mailsrv.net import admission
from mailsrv.net.shutdown import LiveSessions
from mailsrv.net.stream import Stream, serve

if TYPE_CHECKING:
    from mailsrv.pop3.session import Pop3Session

log = logging.getLogger("mailsrv.pop3")

#: Read size: many pipelined commands fit; lines are limited by the core anyway.
READ_SIZE = 64 * 1024
#: Transport buffer high-water mark: drain() waits above this (one RETR may exceed it).
WRITE_HIGH_WATER = 256 * 1024


class _Connection:
    """One client as the shutdown sees it: idle (waiting for a command) or busy."""

    __slots__ = ("reading", "session", "stopping", "stream")

    def __init__(self, session: Pop3Session, stream: Stream) -> None:
        self.session = session
        self.stream = stream
        self.reading = False
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True
        if self.reading:
            self.abort()  # the read loop answers the cancel with the goodbye

    def abort(self) -> None:
        if self.stream.task is not None:
            self.stream.task.cancel()


class Pop3Listener:
    def __init__(self, ctx: ServerContext, implicit_tls: bool) -> None:
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self._server: asyncio.Server | None = None
        self._port = 0
        self._conns = LiveSessions()

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    async def _handle(self, stream: Stream) -> None:
        # The protocol modules load with the first connection, not at server start.
        from mailsrv.pop3.responses import encode
        from mailsrv.pop3.session import REFUSALS, Pop3Session

        peername = stream.get_extra_info("peername")
        peer = str(peername[0]) if peername else "?"
        refused = admission.refusal(self.ctx, peer, "pop3")
        if refused is not None:
            stream.write(encode(REFUSALS[refused]))
            await stream.close_and_wait()
            return
        info = self.ctx.sessions.open("pop3", peer, self.port, tls=self.implicit_tls)
        session = Pop3Session(self.ctx, info, tls=self.implicit_tls, stls=not self.implicit_tls)
        conn = _Connection(session, stream)
        self._conns.add(conn)
        self.ctx.tracer.record(info.id, "pop3", None, "*", f"connect from {peer}")
        try:
            await self._serve(conn)
        except asyncio.CancelledError:
            if not conn.stopping:
                raise
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.debug("%s: connection lost: %r", info.id, exc)
        except Exception:
            log.exception("%s: adapter error", info.id)
        finally:
            await session.close()
            self.ctx.tracer.record(info.id, "pop3", session.user, "*", "closed")
            await stream.close_and_wait()
            self._conns.ended(conn)

    async def _serve(self, conn: _Connection) -> None:
        session, stream = conn.session, conn.stream
        stream.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        from mailsrv.pop3.session import AUTOLOGOUT, SHUTDOWN

        await self._write(conn, (session.greeting(),))
        while not conn.stopping:
            conn.reading = True
            try:
                async with asyncio.timeout(session.timeout):  # no task per read, as wait_for has
                    data = await stream.read(READ_SIZE)
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
            self.ctx.metrics.received("pop3", len(data))
            out = await session.feed(data)
            while out.more:
                await self._write(conn, out.chunks)
                out = await session.feed(b"")
            if out.start_tls:
                await self._upgrade(conn, out.data)
                continue
            await self._write(conn, out.chunks)
            if out.close:
                return
        await self._write(conn, (session.notice(SHUTDOWN),))

    async def _upgrade(self, conn: _Connection, reply: bytes) -> None:
        """STLS: send ``+OK`` and start the handshake without yielding in between.

        Any await here would let the client's ClientHello land in the plaintext reader; and any
        plaintext already buffered was pipelined after STLS: ``Stream.start_tls`` drops it
        (RFC 2595 §4).
        """
        tls = self.ctx.tls_for("pop3")
        assert tls is not None  # noqa: S101 - STLS is offered only with TLS
        conn.stream.write(reply)
        await conn.stream.start_tls(tls)
        conn.stream.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        conn.session.tls_started()

    async def _write(self, conn: _Connection, chunks: Sequence[bytes]) -> None:
        stream = conn.stream
        if stream.is_closing():
            raise ConnectionResetError("the client closed the connection")
        if not chunks:
            return
        stream.writelines(chunks)
        self.ctx.metrics.sent("pop3", sum(map(len, chunks)))
        # drain() only waits above the high-water mark; below it, skip its cost entirely.
        if stream.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            async with asyncio.timeout(conn.session.drain_timeout):
                await stream.drain()

    async def close(self) -> None:
        """Stop accepting; idle sessions are told at once, busy ones after their command."""
        if self._server is not None:
            self._server.close()
        await self._conns.shutdown(self.ctx.config.limits.shutdown_grace)
        if self._server is not None:
            await self._server.wait_closed()


async def start_pop3(
    ctx: ServerContext, host: str, port: int, *, implicit_tls: bool
) -> Pop3Listener:
    """Serve POP3 on ``host:port``; ``implicit_tls`` for POP3S (995)."""
    listener = Pop3Listener(ctx, implicit_tls)
    ssl_ctx = ctx.tls_for("pop3s") if implicit_tls else None
    if implicit_tls and ssl_ctx is None:
        raise ValueError("POP3S needs a TLS context")
    server = await serve(
        listener._handle, host, port, ssl_context=ssl_ctx, listen_sockets=ctx.listen_sockets
    )
    listener._server = server
    listener._port = int(server.sockets[0].getsockname()[1])
    return listener
