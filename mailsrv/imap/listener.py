"""The thin asyncio adapter: sockets, TLS, timeouts, back-pressure, faults (RFC 9051 §5.4)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailsrv.context import ServerContext, SessionInfo, is_loopback
from mailsrv.faults import FaultKind
from mailsrv.imap.commands import InvalidCommand, command_name
from mailsrv.imap.protocol import ImapCore, NeedData, ProtocolError
from mailsrv.imap.session import After, ImapSession, Mode

log = logging.getLogger("mailsrv.imap")
#: Bytes read from the socket at a time.
READ_SIZE = 256 * 1024


class _Output:
    """The session's sink: buffers responses, writes them in one go, waits while the peer lags."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.buf: list[bytes] = []
        self.drop_after: int | None = None  # fault injection: close after this many bytes

    def write(self, data: bytes) -> None:
        self.buf.append(data)

    async def drain(self) -> None:
        if not self.buf:
            return
        data = b"".join(self.buf)
        self.buf.clear()
        c = self.conn
        if self.drop_after is not None:
            data = data[: self.drop_after]
            self.drop_after -= len(data)
        c.ctx.tracer.record(c.info.id, "imap", c.session.user, "S", data)
        c.writer.write(data)
        if self.drop_after == 0:
            raise ConnectionAbortedError("fault injection: drop")
        limits = c.ctx.config.limits
        if c.writer.transport.get_write_buffer_size() > limits.output_buffer:
            await asyncio.wait_for(c.writer.drain(), limits.imap_idle_timeout)


class _Connection:
    def __init__(
        self,
        ctx: ServerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: SessionInfo,
        implicit_tls: bool,
    ) -> None:
        self.ctx, self.reader, self.writer, self.info = ctx, reader, writer, info
        limits = ctx.config.limits
        self.core = ImapCore(max_line=limits.imap_line, max_append=limits.message_size)
        self.out = _Output(self)
        self.session = ImapSession(ctx, info, self.out, tls=implicit_tls, starttls=not implicit_tls)

    def _timeout(self) -> float:
        limits = self.ctx.config.limits
        if self.session.user is None:
            return limits.preauth_timeout
        return limits.imap_idle_timeout

    async def run(self) -> None:
        s, core = self.session, self.core
        self.out.write(s.greeting())
        await self.out.drain()
        while s.after is not After.CLOSE:
            event = core.next_command() if s.mode is Mode.COMMAND else core.next_line()
            if pending := core.data_to_send():
                self.out.write(pending)
            if isinstance(event, NeedData):
                await self.out.drain()
                if not await self._read():
                    return
                continue
            trace = event if isinstance(event, bytes) else core.last_input
            self.ctx.tracer.record(
                self.info.id, "imap", s.user, "C", trace, sensitive=s.mode is Mode.SASL
            )
            if isinstance(event, bytes):
                await (s.sasl_line(event) if s.mode is Mode.SASL else s.idle_line(event))
            elif not await self._fault(event):
                await s.handle(event)
            await self.out.drain()
            if s.after is After.STARTTLS and self.ctx.tls is not None:
                s.after = After.NOTHING
                await self.writer.start_tls(self.ctx.tls)
                core.discard_input()
                s.tls_started()

    async def _read(self) -> bool:
        """Wait for input (and, while idling, for store events); False means close."""
        read = asyncio.ensure_future(self.reader.read(READ_SIZE))
        waits: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
        event = None
        if self.session.mode is Mode.IDLE:
            event = asyncio.ensure_future(self.session.idle_wait())
            waits.add(event)  # type: ignore[arg-type]
        done, _ = await asyncio.wait(
            waits, timeout=self._timeout(), return_when=asyncio.FIRST_COMPLETED
        )
        for task in waits - done:
            task.cancel()
        if event is not None and event in done:
            event.result()
            await self.session.idle_push()
            await self.out.drain()
        if read not in done:
            if not done:
                self.out.write(b"* BYE Autologout; idle for too long\r\n")
                await self.out.drain()
                return False
            return True
        data = read.result()
        if not data:
            return False
        self.core.receive_data(data)
        return True

    async def _fault(self, cmd: object) -> bool:
        """Apply an injected fault; True when the command must not run."""
        if isinstance(cmd, InvalidCommand):
            return False
        fault = self.ctx.faults.check("imap", command_name(cmd))  # type: ignore[arg-type]
        if fault is None:
            return False
        if fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.seconds)
            return False
        if fault.kind is FaultKind.FAIL:
            self.out.write(f"{cmd.tag} {fault.reply}\r\n".encode())  # type: ignore[attr-defined]
            return True
        if fault.after_bytes is None:
            raise ConnectionAbortedError("fault injection: drop")
        self.out.drop_after = fault.after_bytes
        return False


class ImapListener:
    """One listening socket (143 with STARTTLS, or 993 with implicit TLS)."""

    def __init__(self, ctx: ServerContext, implicit_tls: bool) -> None:
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.server: asyncio.Server | None = None
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("not listening")
        return int(self.server.sockets[0].getsockname()[1])

    def _over_limit(self, peer: str) -> bool:
        limits, sessions = self.ctx.config.limits, self.ctx.sessions
        if len(sessions.live) >= limits.connections_total:
            return True
        exempt = self.ctx.config.dev and is_loopback(peer)
        return not exempt and sessions.count_from(peer) >= limits.connections_per_ip

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        self.tasks.add(task)
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        if self._over_limit(peer):
            writer.write(b"* BYE [UNAVAILABLE] too many connections\r\n")
            await _close(writer)
            self.tasks.discard(task)
            return
        info = self.ctx.sessions.open("imap", peer, self.port, self.implicit_tls)
        conn = _Connection(self.ctx, reader, writer, info, self.implicit_tls)
        self.connections.add(conn)
        self.ctx.tracer.record(info.id, "imap", None, "*", f"connect from {peer}")
        try:
            await conn.run()
        except (ConnectionError, TimeoutError, ProtocolError, OSError) as exc:
            log.debug("%s: connection ended: %r", info.id, exc)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s: connection failed", info.id)
        finally:
            conn.session.close()
            self.connections.discard(conn)
            self.ctx.sessions.close(info)
            self.ctx.tracer.record(info.id, "imap", conn.session.user, "*", "close")
            await _close(writer)
            self.tasks.discard(task)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                conn.writer.write(b"* BYE Server shutting down\r\n")
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        if self.server is not None:
            await self.server.wait_closed()


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2)


async def start_imap(
    ctx: ServerContext, host: str, port: int, *, implicit_tls: bool
) -> ImapListener:
    """Listen for IMAP on ``host:port`` (RFC 9051 §2.1: 143 with STARTTLS, 993 with TLS)."""
    listener = ImapListener(ctx, implicit_tls)
    ssl_ctx = ctx.tls if implicit_tls else None
    listener.server = await asyncio.start_server(listener.serve, host, port, ssl=ssl_ctx)
    return listener
