"""The POP3 asyncio adapter over real sockets: limits, timeouts, shutdown, pipelining, faults."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from mailsrv.store.memory import MemoryStore
from mailsrv.tls import client_ssl_context

pytestmark = pytest.mark.timeout(30)


_open: list[Client] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _open:
        client = _open.pop()
        client.close()
        with contextlib.suppress(Exception):
            await client.writer.wait_closed()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        _open.append(self)

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext | None = None) -> Client:
        host = "localhost" if tls else "127.0.0.1"
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        return cls(reader, writer)

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 10)

    async def block(self) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n.\r\n"), 10)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def login(self, user: str = "ann") -> None:
        assert (await self.line()).startswith(b"+OK mailsrv POP3 server ready")
        await self.send(b"USER %s\r\nPASS pw\r\n" % user.encode())
        assert await self.line() == b"+OK\r\n"
        assert (await self.line()).startswith(b"+OK %s has" % user.encode())

    async def eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 10) == b""

    def close(self) -> None:
        self.writer.close()


async def seed(server: MailServer, *messages: bytes) -> None:
    await server.store.ensure_user("ann")
    for msg in messages or (b"Subject: a\r\n\r\nbody a\r\n", b"Subject: b\r\n\r\nbody b\r\n"):
        await server.store.deliver("ann", msg)


async def count(server: MailServer) -> int:
    return len((await (await server.store.open("ann")).snapshot()).messages)


async def test_pipelined_commands_answered_in_order(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        await seed(server)
        client = await Client.connect(server.ports.pop3)
        await client.line()
        await client.send(b"USER ann\r\nPASS pw\r\nSTAT\r\nLIST\r\nRETR 2\r\nNOOP\r\nQUIT\r\n")
        assert await client.line() == b"+OK\r\n"
        assert (await client.line()).startswith(b"+OK ann has 2 messages")
        assert (await client.line()).startswith(b"+OK 2 ")
        assert (await client.block()).startswith(b"+OK 2 messages")
        assert (await client.block()).endswith(b"\r\nbody b\r\n.\r\n")
        assert await client.line() == b"+OK\r\n"
        assert (await client.line()).startswith(b"+OK mailsrv POP3 server signing off")
        assert await client.eof()


async def test_dropped_connection_expunges_nothing(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        await seed(server)
        client = await Client.connect(server.ports.pop3)
        await client.login()
        await client.send(b"DELE 1\r\nDELE 2\r\n")
        assert await client.line() == b"+OK message 1 deleted\r\n"
        assert await client.line() == b"+OK message 2 deleted\r\n"
        client.close()
        for _ in range(100):
            if not server.context.sessions.live:
                break
            await asyncio.sleep(0.02)
        assert not server.context.sessions.live
        assert await count(server) == 2


async def test_too_many_connections(make_server: Any) -> None:
    limits = Limits(connections_total=1, auth_failure_delay=0.0)
    async with make_server(services={"pop3"}, limits=limits) as server:
        first = await Client.connect(server.ports.pop3)
        assert (await first.line()).startswith(b"+OK")
        second = await Client.connect(server.ports.pop3)
        assert await second.line() == b"-ERR [SYS/TEMP] too many connections\r\n"
        assert await second.eof()
        first.close()


async def test_preauth_timeout_autologout(make_server: Any) -> None:
    limits = Limits(preauth_timeout=0.2, auth_failure_delay=0.0)
    async with make_server(services={"pop3"}, limits=limits) as server:
        client = await Client.connect(server.ports.pop3)
        await client.line()
        assert await client.line() == b"-ERR [SYS/TEMP] autologout; idle for too long\r\n"
        assert await client.eof()


async def test_shutdown_says_goodbye_and_expunges_nothing(make_server: Any) -> None:
    store = MemoryStore()
    async with make_server(services={"pop3"}, store=store) as server:
        await seed(server)
        client = await Client.connect(server.ports.pop3)
        await client.login()
        await client.send(b"DELE 1\r\n")
        assert await client.line() == b"+OK message 1 deleted\r\n"
    assert await client.line() == b"-ERR [SYS/TEMP] server shutting down\r\n"
    assert await client.eof()
    assert len((await (await store.open("ann")).snapshot()).messages) == 2


async def test_lock_session_spans_pop3_and_pop3s(make_server: Any, certs_dir: Path) -> None:
    tls = client_ssl_context(certs_dir / "ca.pem")
    async with make_server(services={"pop3", "pop3s"}, pop3_lock_session=True) as server:
        await seed(server)
        first = await Client.connect(server.ports.pop3)
        await first.login()
        second = await Client.connect(server.ports.pop3s, tls)
        await second.line()
        await second.send(b"USER ann\r\nPASS pw\r\n")
        assert await second.line() == b"+OK\r\n"
        assert await second.line() == (
            b"-ERR [IN-USE] maildrop of ann is locked by another POP3 session\r\n"
        )
        await first.send(b"QUIT\r\n")
        assert (await first.line()).startswith(b"+OK")
        assert await first.eof()
        await second.send(b"USER ann\r\nPASS pw\r\n")
        assert await second.line() == b"+OK\r\n"
        assert (await second.line()).startswith(b"+OK ann has 2 messages")
        second.close()


async def test_line_too_long_over_the_wire(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        client = await Client.connect(server.ports.pop3)
        await client.line()
        await client.send(b"USER " + b"x" * 5000 + b"\r\nQUIT\r\n")
        assert await client.line() == b"-ERR line too long\r\n"
        assert (await client.line()).startswith(b"+OK mailsrv POP3 server signing off")


async def test_stalled_reader_only_pauses_its_session(make_server: Any) -> None:
    big = b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 4 + b"\r\n"
    big = big[:16] + big[16:] * 60_000  # about 4 MB
    async with make_server(services={"pop3"}) as server:
        await seed(server, big)
        stalled = await Client.connect(server.ports.pop3)
        await stalled.login()
        await stalled.send(b"RETR 1\r\n")
        other = await Client.connect(server.ports.pop3)
        await other.login()  # served while the first client reads nothing
        await other.send(b"STAT\r\n")
        assert await other.line() == b"+OK 1 %d\r\n" % len(big)
        header = await stalled.line()
        assert header == b"+OK %d octets\r\n" % len(big)
        body = await asyncio.wait_for(stalled.reader.readexactly(len(big) + 3), 20)
        assert body == big + b".\r\n"
        stalled.close()
        other.close()


async def test_fault_drop_after_bytes(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        await seed(server)
        server.context.faults.drop("pop3", "RETR", after_bytes=10)
        client = await Client.connect(server.ports.pop3)
        await client.login()
        await client.send(b"RETR 1\r\n")
        assert await asyncio.wait_for(client.reader.read(), 10) == b"+OK 22 oct"
        assert await count(server) == 2


async def test_bad_tls_client_does_not_hurt_the_listener(make_server: Any, certs_dir: Path) -> None:
    tls = client_ssl_context(certs_dir / "ca.pem")
    async with make_server(services={"pop3s"}) as server:
        raw = await Client.connect(server.ports.pop3s)
        await raw.send(b"USER ann\r\n" * 100)
        assert await raw.eof()
        good = await Client.connect(server.ports.pop3s, tls)
        assert (await good.line()).startswith(b"+OK mailsrv POP3 server ready")
        good.close()


async def test_transcript_records_both_directions(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        client = await Client.connect(server.ports.pop3)
        await client.login()
        await client.send(b"QUIT\r\n")
        assert await client.line()
        assert await client.eof()
        lines = [(t.direction, t.text) for t in server.context.tracer.lines]
        assert ("C", "USER ann") in lines
        assert ("C", "PASS ***") in lines
        assert ("S", "+OK") in lines
        assert lines[-1] == ("*", "closed")
