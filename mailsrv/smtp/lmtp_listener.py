"""``start_lmtp`` and ``start_lmtp_socket``: LMTP's TCP port and UNIX socket and their listener.

The protocol (``mailsrv.smtp.lmtp``, aiosmtpd's) is imported at the first connection: a server
that nobody delivers to over LMTP yet starts without it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mailsrv.context import ServerContext
from mailsrv.net.listen import create_server
from mailsrv.net.shutdown import LiveSessions
from mailsrv.smtp.lazy_protocol import lazy_protocol_factory

if TYPE_CHECKING:
    from mailsrv.smtp.lmtp import LmtpHandler


class LmtpListener:
    """One LMTP endpoint: a TCP port, or a UNIX socket (``port`` 0, ``path`` its file)."""

    def __init__(
        self,
        ctx: ServerContext,
        server: asyncio.Server,
        live: LiveSessions,
        port: int,
        path: Path | None = None,
    ) -> None:
        self._ctx = ctx
        self._server = server
        self._live = live
        self.port = port
        self.path = path

    async def close(self) -> None:
        """As SMTP's: a 421 between commands at once, in the middle of DATA after it; then
        the socket file is removed."""
        self._server.close()
        await self._live.shutdown(self._ctx.config.limits.shutdown_grace)
        await self._server.wait_closed()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _factory(
    ctx: ServerContext, live: LiveSessions, port: list[int]
) -> Callable[[], asyncio.Protocol]:
    """One protocol per connection; ``port`` is read then, once the listener knows it.
    aiosmtpd is imported at the first connection, not while the server starts."""

    def make_handler() -> LmtpHandler:
        from mailsrv.smtp.lmtp import LmtpHandler

        return LmtpHandler(ctx)

    def make_protocol(handler: LmtpHandler) -> asyncio.Protocol:
        from mailsrv.smtp.lmtp import IngressLMTP

        return IngressLMTP(ctx, handler, port[0], live)

    return lazy_protocol_factory(make_handler, make_protocol)


async def start_lmtp(ctx: ServerContext, host: str, port: int) -> LmtpListener:
    """Serve LMTP on ``host:port`` (0: ephemeral)."""
    live = LiveSessions()
    holder = [port]
    server = await create_server(ctx.listen_sockets, _factory(ctx, live, holder), host, port)
    holder[0] = server.sockets[0].getsockname()[1]
    return LmtpListener(ctx, server, live, holder[0])


def clear_stale_socket(path: Path) -> None:
    """Remove a socket file that a stopped server left; refuse a live one or any other file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, "the file exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)
            return
    raise OSError(errno.EADDRINUSE, "another server is listening on it")


async def start_lmtp_socket(ctx: ServerContext, path: Path) -> LmtpListener:
    """Serve LMTP on the UNIX socket ``path`` (its directory made if missing). Its permissions
    follow the umask: the MTA's user needs write access to connect."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_socket(path)
    loop = asyncio.get_running_loop()
    live = LiveSessions()
    server = await loop.create_unix_server(_factory(ctx, live, [0]), str(path))
    return LmtpListener(ctx, server, live, 0, path)
