"""A raw line client for the connection-layer tests (exact bytes, closes, TLS upgrades)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

#: Every client still open; ``close_all`` (an autouse fixture in each test module) closes them.
OPEN: list[Conn] = []


async def close_all() -> None:
    while OPEN:
        await OPEN.pop().close()


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        OPEN.append(self)

    @classmethod
    async def open(cls, port: int | None) -> Conn:
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    @classmethod
    async def imap_login(cls, port: int | None, user: str = "alice") -> Conn:
        """An IMAP connection past its greeting, logged in as ``user`` (any password: dev)."""
        conn = await cls.open(port)
        await conn.line()
        await conn.send(b"l LOGIN %s pw\r\n" % user.encode())
        await conn.until(b"l OK")
        return conn

    async def line(self, timeout: float = 10) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until(self, prefix: bytes) -> list[bytes]:
        """Lines up to and including the first that starts with ``prefix``."""
        out: list[bytes] = []
        while True:
            line = await self.line()
            assert line, f"closed before {prefix!r}: {out}"
            out.append(line)
            if line.startswith(prefix):
                return out

    async def closed(self, timeout: float = 10) -> bytes:
        """Everything the server sends until it closes (TimeoutError if it keeps the
        connection open)."""
        data = b""
        with contextlib.suppress(ConnectionError):
            while chunk := await asyncio.wait_for(self.reader.read(65536), timeout):
                data += chunk
        return data

    async def start_tls(self, certs_dir: Path) -> None:
        ctx = ssl.create_default_context(cafile=str(certs_dir / "ca.pem"))
        await self.writer.start_tls(ctx, server_hostname="localhost")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
