"""Where an engine listens: ``spamc://HOST:PORT``, ``clamd://HOST:PORT`` or ``unix:/PATH``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Largest port number.
MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One engine's address: a TCP host and port, or a UNIX socket path."""

    url: str
    host: str | None = None
    port: int | None = None
    path: str | None = None

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.path is not None:
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection(self.host, self.port)


def parse_endpoint(value: str, scheme: str) -> Endpoint:
    """``value`` as an endpoint of ``scheme`` ("spamc" or "clamd"); ``ValueError`` says why not."""
    wanted = f'"{scheme}://HOST:PORT" or "unix:/PATH"'
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path.startswith("/"):
            raise ValueError(f"a UNIX socket is given by its absolute path: {wanted}")
        return Endpoint(value, path=path)
    parts = urlsplit(value)
    if parts.scheme != scheme or not parts.netloc:
        raise ValueError(f"must be {wanted}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must be {wanted}, with nothing after the port")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"must be {wanted} with a port up to {MAX_PORT}") from None
    if port is None or port == 0 or not parts.hostname:
        raise ValueError(f"must be {wanted} with a host and a port")
    return Endpoint(value, host=parts.hostname, port=port)


class EngineError(Exception):
    """An engine could not be reached, or answered something that is not its protocol."""


async def exchange(endpoint: Endpoint, chunks: Iterable[bytes | memoryview], limit: int) -> bytes:
    """Send ``chunks`` and read the whole reply (engines close after it), at most ``limit``
    bytes. Raises ``EngineError`` (with the reason) for a refused connection or a long reply."""
    try:
        reader, writer = await endpoint.connect()
    except OSError as exc:
        raise EngineError(f"cannot connect: {exc.strerror or exc}") from exc
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        reply = await reader.read(limit + 1)
        while reply and len(reply) <= limit:
            more = await reader.read(limit + 1 - len(reply))
            if not more:
                break
            reply += more
    except BaseException as exc:
        # Timed out or failed: drop what is unsent (an engine that stopped reading would
        # otherwise hold close() until it reads again).
        writer.transport.abort()
        if isinstance(exc, OSError):
            raise EngineError(f"connection failed: {exc.strerror or exc}") from exc
        raise
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    if len(reply) > limit:
        raise EngineError(f"reply longer than {limit} bytes")
    if not reply:
        raise EngineError("closed the connection without an answer")
    return reply
