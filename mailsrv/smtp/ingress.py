"""``start_smtp``: one SMTP port in one of the modes, and its listener (shut down with a 421)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mailsrv.context import ServerContext
from mailsrv.net.listen import create_server
from mailsrv.net.shutdown import LiveSessions
from mailsrv.smtp.lazy_protocol import lazy_protocol_factory

if TYPE_CHECKING:
    from mailsrv.smtp.handler import IngressHandler

MODES = ("smtp", "submission", "smtps")


class SmtpListener:
    """One SMTP port: the asyncio server and its live sessions."""

    def __init__(self, ctx: ServerContext, server: asyncio.Server, live: LiveSessions) -> None:
        self._ctx = ctx
        self._server = server
        self._live = live
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop accepting; a session between commands gets its 421 at once, one in the middle
        of a command (a DATA transfer) after it, within ``limits.shutdown_grace``."""
        self._server.close()
        await self._live.shutdown(self._ctx.config.limits.shutdown_grace)
        await self._server.wait_closed()


async def start_smtp(ctx: ServerContext, host: str, port: int, *, mode: str) -> SmtpListener:
    """Serve SMTP in ``mode`` ("smtp", "submission", "smtps") on ``host:port`` (0: ephemeral)."""
    if mode not in MODES:
        raise ValueError(f"unknown SMTP mode {mode!r}")
    if mode == "smtps" and ctx.tls is None:
        raise ValueError("smtps needs TLS")
    live = LiveSessions()
    holder: list[int] = [port]

    def make_handler() -> IngressHandler:
        # aiosmtpd and the session are imported at the first connection, not at start-up.
        from mailsrv.smtp.handler import IngressHandler

        return IngressHandler(ctx)

    def make_protocol(handler: IngressHandler) -> asyncio.Protocol:
        from mailsrv.smtp.session import IngressSMTP

        return IngressSMTP(ctx, handler, mode, holder[0], live)

    factory = lazy_protocol_factory(make_handler, make_protocol)
    ssl_context = ctx.tls_for("smtps") if mode == "smtps" else None
    server = await create_server(ctx.listen_sockets, factory, host, port, ssl_context=ssl_context)
    listener = SmtpListener(ctx, server, live)
    holder[0] = listener.port
    return listener
