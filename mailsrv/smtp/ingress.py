"""``start_smtp``: one SMTP port in one of the modes, and its listener (closed with a 421)."""

from __future__ import annotations

import asyncio

from mailsrv.context import ServerContext
from mailsrv.smtp.handler import IngressHandler
from mailsrv.smtp.session import IngressSMTP

MODES = ("smtp", "submission", "smtps")
#: Seconds ``close()`` waits for sessions to finish after the 421.
CLOSE_GRACE = 5.0


class SmtpListener:
    """One SMTP port: the asyncio server and its live sessions."""

    def __init__(self, server: asyncio.Server, protocols: set[IngressSMTP]) -> None:
        self._server = server
        self._protocols = protocols
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._server.close()
        protocols = list(self._protocols)
        for proto in protocols:
            proto.goodbye()
        tasks = [p._handler_coroutine for p in protocols if p._handler_coroutine is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_GRACE)
        await self._server.wait_closed()


async def start_smtp(ctx: ServerContext, host: str, port: int, *, mode: str) -> SmtpListener:
    """Serve SMTP in ``mode`` ("smtp", "submission", "smtps") on ``host:port`` (0: ephemeral)."""
    if mode not in MODES:
        raise ValueError(f"unknown SMTP mode {mode!r}")
    if mode == "smtps" and ctx.tls is None:
        raise ValueError("smtps needs TLS")
    loop = asyncio.get_running_loop()
    handler = IngressHandler(ctx)
    protocols: set[IngressSMTP] = set()
    holder: list[int] = [port]

    def factory() -> IngressSMTP:
        proto = IngressSMTP(ctx, handler, mode, holder[0], protocols)
        protocols.add(proto)
        return proto

    server = await loop.create_server(
        factory, host, port, ssl=ctx.tls if mode == "smtps" else None, reuse_address=True
    )
    listener = SmtpListener(server, protocols)
    holder[0] = listener.port
    return listener
