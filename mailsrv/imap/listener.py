"""IMAP listeners: accept connections (143 with STARTTLS, 993 with implicit TLS), admit them
(``mailsrv.net.admission``), register sessions, and shut down gracefully (``mailsrv.net.shutdown``):
a session waiting for a command gets ``* BYE [UNAVAILABLE] Server shutting down`` at once
(RFC 9051 §7.1.5), one in the middle of a command (an APPEND literal) finishes it first."""

from __future__ import annotations

import asyncio
import logging

from mailsrv.context import ServerContext
from mailsrv.errors import PeerError
from mailsrv.imap.connection import Connection
from mailsrv.imap.server_state import ImapServerState
from mailsrv.net import admission
from mailsrv.net.shutdown import LiveSessions
from mailsrv.net.stream import Stream, serve

log = logging.getLogger("mailsrv.imap")

#: How IMAP turns a connection away (RFC 9051 §7.1.5: BYE at connect, then close).
_REFUSALS: dict[admission.Refusal, bytes] = {
    admission.Refusal.TOO_MANY_CONNECTIONS: b"* BYE [UNAVAILABLE] too many connections\r\n",
    admission.Refusal.BLOCKED: (
        b"* BYE [UNAVAILABLE] too many failed logins from your address; try again later\r\n"
    ),
}
SHUTDOWN_BYE = b"* BYE [UNAVAILABLE] Server shutting down\r\n"


class _Live:
    """One connection as the shutdown sees it: between commands, or inside one."""

    __slots__ = ("aborted", "conn", "stopping", "stream")

    def __init__(self, conn: Connection, stream: Stream) -> None:
        self.conn = conn
        self.stream = stream
        self.stopping = False
        self.aborted = False
        stream.on_wait = self._between_inputs

    def _idle(self) -> bool:
        # Waiting for the client with no partial command (an APPEND whose literal was announced
        # is a command in progress, even before its first byte).
        return self.stream.reading and not self.conn.session.core.mid_command

    def _between_inputs(self) -> None:
        if self.stopping:
            self._cancel()

    def stop(self) -> None:
        self.stopping = True
        if self._idle():
            self._cancel()

    def abort(self) -> None:
        self.aborted = True
        self._cancel()

    def _cancel(self) -> None:
        if self.stream.task is not None:
            self.stream.task.cancel()


class ImapListener:
    """One listening socket (143 with STARTTLS, or 993 with implicit TLS)."""

    def __init__(self, ctx: ServerContext, implicit_tls: bool, shared: ImapServerState) -> None:
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.shared = shared
        self.server: asyncio.Server | None = None
        self.live = LiveSessions()

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("not listening")
        return int(self.server.sockets[0].getsockname()[1])

    async def serve(self, stream: Stream) -> None:
        peer = str((stream.get_extra_info("peername") or ("?",))[0])
        refused = admission.refusal(self.ctx, peer, "imap")
        if refused is not None:
            stream.write(_REFUSALS[refused])
            await stream.close_and_wait()
            return
        info = self.ctx.sessions.open("imap", peer, self.port, self.implicit_tls)
        conn = Connection(self.ctx, stream, stream, info, self.implicit_tls, self.shared)
        live = _Live(conn, stream)
        self.live.add(live)
        self.ctx.tracer.record(info.id, "imap", None, "*", f"connect from {peer}")
        try:
            await conn.run()
        except (ConnectionError, TimeoutError, PeerError, OSError) as exc:
            log.debug("%s: connection ended: %r", info.id, exc)
        except asyncio.CancelledError:
            if not live.stopping:
                raise
            if not live.aborted or stream.reading:
                self._goodbye(conn, stream)
        except Exception:
            log.exception("%s: connection failed", info.id)
        finally:
            conn.session.close()
            self.ctx.sessions.close(info)
            self.ctx.tracer.record(info.id, "imap", conn.session.user, "*", "close")
            await stream.close_and_wait()
            self.live.ended(live)

    def _goodbye(self, conn: Connection, stream: Stream) -> None:
        if stream.is_closing():
            return
        self.ctx.tracer.record(conn.info.id, "imap", conn.session.user, "S", SHUTDOWN_BYE)
        stream.write(SHUTDOWN_BYE)

    async def close(self) -> None:
        """Stop accepting; idle sessions get BYE at once, busy ones after their command."""
        if self.server is not None:
            self.server.close()
        await self.live.shutdown(self.ctx.config.limits.shutdown_grace)
        if self.server is not None:
            await self.server.wait_closed()


async def start_imap(
    ctx: ServerContext, host: str, port: int, *, implicit_tls: bool, shared: ImapServerState
) -> ImapListener:
    """Listen for IMAP on ``host:port`` (RFC 9051 §2.1: 143 with STARTTLS, 993 with TLS);
    ``shared`` is the server's IMAP state, the same for all its IMAP listeners."""
    listener = ImapListener(ctx, implicit_tls, shared)
    ssl_ctx = ctx.tls_for("imaps") if implicit_tls else None
    listener.server = await serve(
        listener.serve, host, port, ssl_context=ssl_ctx, listen_sockets=ctx.listen_sockets
    )
    return listener
