"""IMAP listeners: accept connections (143 with STARTTLS, 993 with implicit TLS), enforce the
connection limits, register sessions, and say BYE to everyone on shutdown (RFC 9051 §2.1)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailsrv.context import ServerContext
from mailsrv.imap.connection import Connection
from mailsrv.imap.protocol import ProtocolError
from mailsrv.net import admission

log = logging.getLogger("mailsrv.imap")

#: How IMAP turns a connection away (RFC 9051 §7.1.5: BYE at connect, then close).
_REFUSALS: dict[admission.Refusal, bytes] = {
    admission.Refusal.TOO_MANY_CONNECTIONS: b"* BYE [UNAVAILABLE] too many connections\r\n",
    admission.Refusal.BLOCKED: (
        b"* BYE [UNAVAILABLE] too many failed logins from your address; try again later\r\n"
    ),
}


class ImapListener:
    """One listening socket (143 with STARTTLS, or 993 with implicit TLS)."""

    def __init__(self, ctx: ServerContext, implicit_tls: bool) -> None:
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.server: asyncio.Server | None = None
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("not listening")
        return int(self.server.sockets[0].getsockname()[1])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        self.tasks.add(task)
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        refused = admission.refusal(self.ctx, peer, "imap")
        if refused is not None:
            writer.write(_REFUSALS[refused])
            await _close(writer)
            self.tasks.discard(task)
            return
        info = self.ctx.sessions.open("imap", peer, self.port, self.implicit_tls)
        conn = Connection(self.ctx, reader, writer, info, self.implicit_tls)
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
