"""Minimal, fast POP3 / IMAP / SMTP client logic on raw asyncio streams (not poplib/imaplib).

Just enough protocol to drive load and check replies: every command's status is checked and a
failure raises ``ClientError`` with the server's line, so a benchmark never measures errors.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import zlib
from typing import Protocol

#: Stream buffer limit: a whole 2 MB message must fit when reading up to a POP3 terminator.
STREAM_LIMIT = 64 * 1024 * 1024


class ClientError(Exception):
    pass


async def open_stream(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port, limit=STREAM_LIMIT)


class Pop3Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int) -> Pop3Client:
        client = cls(*await open_stream(host, port))
        await client._status()
        return client

    async def _status(self) -> bytes:
        line = await self.reader.readline()
        if not line.startswith(b"+OK"):
            raise ClientError(f"POP3: {line[:200]!r}")
        return line

    async def command(self, line: str) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        return await self._status()

    async def multiline(self, line: str) -> bytes:
        """The body of a multi-line reply (still dot-stuffed), without the final ``.`` line."""
        await self.command(line)
        data = await self.reader.readuntil(b".\r\n")
        while not (data == b".\r\n" or data.endswith(b"\r\n.\r\n")):
            data += await self.reader.readuntil(b".\r\n")
        return data[:-3]

    async def login(self, user: str, password: str) -> None:
        await self.command(f"USER {user}")
        await self.command(f"PASS {password}")

    async def listing(self) -> list[tuple[int, int]]:
        body = await self.multiline("LIST")
        return [(int(a), int(b)) for a, b in (ln.split() for ln in body.splitlines())]

    async def quit(self) -> None:
        await self.command("QUIT")
        self.writer.close()


class _Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class _DeflateWriter:
    """The client's half of COMPRESS=DEFLATE (RFC 4978): raw deflate, flushed per write."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._deflate = zlib.compressobj(wbits=-15)

    def write(self, data: bytes) -> None:
        d = self._deflate
        self._writer.write(d.compress(data) + d.flush(zlib.Z_SYNC_FLUSH))

    def close(self) -> None:
        self._writer.close()


async def _inflate(raw: asyncio.StreamReader, into: asyncio.StreamReader) -> None:
    """Feed what the server sends, inflated, to the reader the client reads from."""
    inflate = zlib.decompressobj(wbits=-15)
    while chunk := await raw.read(256 * 1024):
        into.feed_data(inflate.decompress(chunk))
    into.feed_eof()


class ImapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer: _Writer = writer
        self._raw = writer
        self._pump: asyncio.Task[None] | None = None
        self._tags = (f"a{n}" for n in itertools.count(1))

    @classmethod
    async def connect(cls, host: str, port: int) -> ImapClient:
        client = cls(*await open_stream(host, port))
        greeting = await client.reader.readline()
        if not greeting.startswith(b"* OK"):
            raise ClientError(f"IMAP greeting: {greeting[:200]!r}")
        return client

    async def command(self, text: str) -> tuple[list[bytes], int]:
        """Send ``text``; returns the untagged lines (literals inlined) and the octets read."""
        tag = next(self._tags)
        self.writer.write(f"{tag} {text}\r\n".encode())
        return await self.response(tag)

    async def response(self, tag: str) -> tuple[list[bytes], int]:
        reader = self.reader
        prefix = tag.encode() + b" "
        lines: list[bytes] = []
        total = 0
        while True:
            line = await reader.readline()
            if not line:
                raise ClientError("IMAP: connection closed")
            total += len(line)
            while line.endswith(b"}\r\n"):
                start = line.rfind(b"{")
                size = int(line[start + 1 : -3])
                literal = await reader.readexactly(size)
                rest = await reader.readline()
                total += size + len(rest)
                line = line + literal + rest
            if line.startswith(prefix):
                if line[len(prefix) : len(prefix) + 2] != b"OK":
                    raise ClientError(f"IMAP {tag}: {line[:200]!r}")
                return lines, total
            lines.append(line)

    async def login(self, user: str, password: str) -> None:
        await self.command(f'LOGIN {user} "{password}"')

    async def compress(self) -> None:
        """``COMPRESS DEFLATE``: from its OK on, both directions are deflated."""
        await self.command("COMPRESS DEFLATE")
        inflated = asyncio.StreamReader(limit=STREAM_LIMIT)
        self._pump = asyncio.create_task(_inflate(self.reader, inflated))
        self.reader, self.writer = inflated, _DeflateWriter(self._raw)

    async def logout(self) -> None:
        tag = next(self._tags)
        self.writer.write(f"{tag} LOGOUT\r\n".encode())
        try:
            await self.response(tag)
        except (ClientError, ConnectionError):
            pass
        self.writer.close()
        if self._pump is not None:
            self._pump.cancel()


def parse_search(lines: list[bytes]) -> list[int]:
    for line in lines:
        if line.startswith(b"* SEARCH"):
            return [int(x) for x in line[8:].split()]
    return []


class SmtpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int) -> SmtpClient:
        client = cls(*await open_stream(host, port))
        await client._reply(b"220")
        await client.command("EHLO bench.test", b"250")
        return client

    async def _reply(self, code: bytes) -> bytes:
        while True:
            line = await self.reader.readline()
            if not line.startswith(code):
                raise ClientError(f"SMTP: {line[:200]!r}")
            if line[3:4] != b"-":
                return line

    async def command(self, line: str, code: bytes) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        return await self._reply(code)

    async def send(self, sender: str, rcpts: list[str], data: bytes) -> float:
        """One message; returns the monotonic time its final ``.`` was sent."""
        await self.command(f"MAIL FROM:<{sender}>", b"250")
        for rcpt in rcpts:
            await self.command(f"RCPT TO:<{rcpt}>", b"250")
        await self.command("DATA", b"354")
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        self.writer.write(stuffed)
        sent = time.monotonic()
        self.writer.write(b".\r\n")
        await self._reply(b"250")
        return sent

    async def quit(self) -> None:
        try:
            await self.command("QUIT", b"221")
        except (ClientError, ConnectionError):
            pass
        self.writer.close()
