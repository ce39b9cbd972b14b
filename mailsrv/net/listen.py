"""Listening sockets: bound here, or handed down by the ``--workers`` supervisor.

With ``mailsrv serve --workers N`` the supervisor binds every port once and each worker inherits
the bound sockets (``ServerContext.listen_sockets``, by port): all workers accept from one queue,
so a worker that dies loses no connection still waiting to be accepted, and a replacement takes
the same sockets. A port not handed down is bound as usual.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

#: Connections the kernel queues per port before ``accept``: asyncio's own default.
BACKLOG = 100


async def create_server(
    listen_sockets: dict[int, socket.socket],
    factory: Callable[[], asyncio.BaseProtocol],
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """``loop.create_server`` on the inherited socket for ``port`` if there is one."""
    loop = asyncio.get_running_loop()
    sock = listen_sockets.get(port) if port else None
    if sock is not None:
        return await loop.create_server(factory, sock=sock, ssl=ssl_context)
    return await loop.create_server(factory, host, port, ssl=ssl_context, reuse_address=True)


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: ephemeral), as ``create_server`` binds it."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
