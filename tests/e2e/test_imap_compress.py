"""COMPRESS=DEFLATE (RFC 4978) end to end: imaplib compressing over plain, STARTTLS and implicit
TLS connections, IDLE updates, literals both ways and a large FETCH compressed, input fed one
byte at a time, input pipelined right after COMPRESS, and a corrupt stream from the client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import imaplib
import logging
import os
import zlib
from pathlib import Path
from typing import Any

import pytest

from mailsrv.server import MailServer
from mailsrv.tls import client_ssl_context

pytestmark = pytest.mark.timeout(60)

MSG = b"From: Ann <ann@example.org>\r\nSubject: small\r\n\r\nhello there\r\n"


def big_message() -> bytes:
    """About 2 MB, half of it random (so it compresses badly), in 76-character lines."""
    text = base64.encodebytes(os.urandom(750_000)) + b"All work and no play.\n" * 40_000
    return b"From: b@example.org\r\nSubject: big\r\n\r\n" + text.replace(b"\n", b"\r\n")


@pytest.fixture(autouse=True)
async def _close_clients() -> Any:
    yield
    while OPEN:
        writer = OPEN.pop()
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


class Zlib:
    """The client's side of COMPRESS: raw deflate out (sync-flushed), raw inflate in."""

    def __init__(self) -> None:
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)
        self.buf = b""

    def deflate(self, data: bytes) -> bytes:
        return self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH)

    def feed(self, wire: bytes) -> None:
        self.buf += self.inflater.decompress(wire)

    def take(self, n: int) -> bytes:
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class DeflateMixin:
    """imaplib with COMPRESS: after ``compress()`` it sends and reads through ``Zlib``, using
    imaplib's public ``send``/``read``/``readline``/``socket``/``xatom`` only."""

    z: Zlib | None = None

    def compress(self) -> tuple[str, list[Any]]:
        typ, data = self.xatom("COMPRESS", "DEFLATE")  # type: ignore[attr-defined]
        if typ == "OK":
            self.z = Zlib()
        return typ, data

    def send(self, data: bytes) -> None:
        if self.z is not None:
            data = self.z.deflate(data)
        super().send(data)  # type: ignore[misc]

    def _fill(self) -> None:
        assert self.z is not None
        chunk = self.socket().recv(65536)  # type: ignore[attr-defined]
        if not chunk:
            raise imaplib.IMAP4.abort("socket error: EOF")
        self.z.feed(chunk)

    def read(self, size: int) -> bytes:
        if self.z is None:
            return super().read(size)  # type: ignore[misc, no-any-return]
        while len(self.z.buf) < size:
            self._fill()
        return self.z.take(size)

    def readline(self) -> bytes:
        if self.z is None:
            return super().readline()  # type: ignore[misc, no-any-return]
        while b"\n" not in self.z.buf:
            self._fill()
        return self.z.take(self.z.buf.index(b"\n") + 1)


class DeflateIMAP4(DeflateMixin, imaplib.IMAP4):
    pass


class DeflateIMAP4_SSL(DeflateMixin, imaplib.IMAP4_SSL):
    pass


def session(m: DeflateMixin, user: str = "ann") -> dict[str, Any]:
    """Log in, compress, and use literals both ways and a large FETCH."""
    out: dict[str, Any] = {}
    imap: Any = m
    imap.login(user, "pw")
    out["caps"] = imap.capabilities
    out["compress"] = m.compress()
    out["again"] = m.compress()
    typ, exists = imap.select("INBOX")
    out["select"] = (typ, list(exists))  # imaplib adds later EXISTS to this very list
    out["append"] = imap.append("INBOX", None, None, MSG)  # a synchronizing literal
    out["big"] = imap.fetch("1", "(BODY.PEEK[])")[1][0][1]
    out["small"] = imap.fetch("2", "(BODY.PEEK[])")[1][0][1]
    out["search"] = imap.search(None, "SUBJECT", "small")[1]
    out["logout"] = imap.logout()[0]
    return out


def check(out: dict[str, Any], big: bytes) -> None:
    assert "COMPRESS=DEFLATE" in out["caps"]
    assert out["compress"] == ("OK", [b"Begin compression."])
    assert out["again"] == ("NO", [b"[COMPRESSIONACTIVE] COMPRESSION=DEFLATE already enabled."])
    assert out["select"] == ("OK", [b"1"])
    assert out["append"][0] == "OK"
    assert out["big"] == big
    assert out["small"] == MSG
    assert out["search"] == [b"2"]
    assert out["logout"] == "BYE"


async def test_imaplib_compressed_on_a_plain_connection(make_server: Any) -> None:
    big = big_message()
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("ann")
        await server.store.deliver("ann", big)
        out = await asyncio.to_thread(
            lambda: session(DeflateIMAP4("127.0.0.1", server.ports.imap, timeout=20))
        )
        check(out, big)


async def test_imaplib_compressed_over_starttls_and_implicit_tls(
    make_server: Any, certs_dir: Path
) -> None:
    big = big_message()
    tls = client_ssl_context(certs_dir / "ca.pem")
    async with make_server(services={"imap", "imaps"}) as server:
        for user in ("ann", "bob"):
            await server.store.ensure_user(user)
            await server.store.deliver(user, big)

        def over_starttls() -> dict[str, Any]:
            m = DeflateIMAP4("localhost", server.ports.imap, timeout=20)
            m.starttls(tls)
            return session(m, "ann")

        check(await asyncio.to_thread(over_starttls), big)

        def over_imaps() -> dict[str, Any]:
            port = server.ports.imaps
            return session(DeflateIMAP4_SSL("localhost", port, ssl_context=tls, timeout=20), "bob")

        check(await asyncio.to_thread(over_imaps), big)


#: The raw clients' writers still open (closed after each test).
OPEN: list[asyncio.StreamWriter] = []


class RawClient:
    """Exact bytes over asyncio, compressed once ``compress`` has been answered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        OPEN.append(writer)
        self.z: Zlib | None = None
        self.plain = b""

    @classmethod
    async def login(cls, server: MailServer) -> RawClient:
        await server.store.ensure_user("ann")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.imap)
        c = cls(reader, writer)
        assert (await c.line()).startswith(b"* OK [CAPABILITY ")
        assert b"a OK" in await c.cmd(b"a LOGIN ann pw\r\n")
        assert await c.cmd(b"z COMPRESS DEFLATE\r\n") == b"z OK Begin compression.\r\n"
        c.z = Zlib()
        return c

    async def send(self, data: bytes, *, one_byte_at_a_time: bool = False) -> None:
        wire = self.z.deflate(data) if self.z is not None else data
        if not one_byte_at_a_time:
            self.writer.write(wire)
        else:
            for i in range(len(wire)):
                self.writer.write(wire[i : i + 1])
                await self.writer.drain()
                await asyncio.sleep(0)
        await self.writer.drain()

    async def line(self, timeout: float = 10) -> bytes:
        if self.z is None:
            return await asyncio.wait_for(self.reader.readline(), timeout)
        while b"\n" not in self.z.buf:
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not chunk:
                return self.z.take(len(self.z.buf))
            self.z.feed(chunk)
        return self.z.take(self.z.buf.index(b"\n") + 1)

    async def cmd(self, data: bytes, **kw: Any) -> bytes:
        """Send ``data``; everything up to and including the tagged reply of its last line."""
        tag = data.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1].split(b" ", 1)[0]
        await self.send(data, **kw)
        out = b""
        while True:
            line = await self.line()
            out += line
            if not line or line.startswith(tag + b" "):
                return out


async def test_idle_updates_arrive_compressed_at_once(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        c = await RawClient.login(server)
        assert b"b OK" in await c.cmd(b"b SELECT INBOX\r\n")
        await c.send(b"c IDLE\r\n")
        assert await c.line() == b"+ idling\r\n"
        await server.store.deliver("ann", MSG)
        # each update is flushed: it decodes before anything else is sent
        assert await c.line(timeout=5) == b"* 1 EXISTS\r\n"
        assert await c.line(timeout=5) == b"* 1 RECENT\r\n"
        assert (
            await c.cmd(b"DONE\r\nd NOOP\r\n")
            == b"c OK Idle completed.\r\nd OK Noop completed.\r\n"
        )


async def test_commands_fed_one_byte_at_a_time(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        c = await RawClient.login(server)
        script = b"b APPEND INBOX {%d+}\r\n%s\r\nc SELECT INBOX\r\nd FETCH 1 BODY.PEEK[]\r\n" % (
            len(MSG),
            MSG,
        )
        reply = await c.cmd(script, one_byte_at_a_time=True)
        assert b"b OK [APPENDUID " in reply and b"c OK [READ-WRITE]" in reply
        assert (
            b"* 1 FETCH (BODY[] {%d}\r\n%s)\r\nd OK Fetch completed.\r\n" % (len(MSG), MSG) in reply
        )


async def test_input_pipelined_right_after_compress_is_inflated(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("ann")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.imap)
        c = RawClient(reader, writer)
        await c.line()
        z = Zlib()
        writer.write(b"a LOGIN ann pw\r\nb COMPRESS DEFLATE\r\n" + z.deflate(b"c NOOP\r\n"))
        assert (await c.line()).startswith(b"a OK")
        assert await c.line() == b"b OK Begin compression.\r\n"
        c.z = z
        assert await c.line() == b"c OK Noop completed.\r\n"


async def test_corrupt_stream_closes_the_connection_with_a_logged_reason(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsrv")
    async with make_server(services={"imap"}) as server:
        c = await RawClient.login(server)
        assert await c.cmd(b"b NOOP\r\n") == b"b OK Noop completed.\r\n"
        c.writer.write(b"\xff\xfe\xfd not deflate at all\r\n")
        rest = await asyncio.wait_for(c.reader.read(), 10)
        assert rest == b""  # closed, and nothing sent: no BYE, no traceback
        messages = [r.getMessage() for r in caplog.records]
        assert any("corrupt COMPRESS stream from the client" in m for m in messages)
        assert not any(r.exc_info for r in caplog.records)
        # the server goes on serving others
        other = await RawClient.login(server)
        assert await other.cmd(b"b NOOP\r\n") == b"b OK Noop completed.\r\n"


async def test_compress_needs_authentication(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.imap)
        c = RawClient(reader, writer)
        assert b"COMPRESS=DEFLATE" in await c.line()
        assert (await c.cmd(b"a COMPRESS DEFLATE\r\n")).startswith(b"a BAD ")
        assert await c.cmd(b"b NOOP\r\n") == b"b OK Noop completed.\r\n"  # still uncompressed


async def test_large_append_compressed_is_stored_exactly(make_server: Any) -> None:
    big = big_message()
    async with make_server(services={"imap"}) as server:
        c = await RawClient.login(server)
        await c.send(b"b APPEND INBOX {%d}\r\n" % len(big))
        assert (await c.line()).startswith(b"+ ")
        reply = await c.cmd(big + b"\r\nc NOOP\r\n")
        assert b"b OK [APPENDUID " in reply and reply.endswith(b"c OK Noop completed.\r\n")
        box = await server.store.open("ann")
        [info] = (await box.snapshot()).messages
        assert await box.read(info.uid) == big
