"""The IMAP asyncio adapter: faults, transcripts, limits, timeouts, STARTTLS, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.tls import client_ssl_context

pytestmark = pytest.mark.timeout(60)

MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\n" + b"0123456789" * 100 + b"\r\n"


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 10)

    async def cmd(self, text: bytes) -> bytes:
        """Send a tagged command, return everything up to and including its tagged reply."""
        tag = text.split(b" ", 1)[0]
        self.writer.write(text + b"\r\n")
        out = b""
        while True:
            line = await self.line()
            if not line:
                return out
            out += line
            if line.startswith(tag + b" "):
                return out

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def logged_in(server: Any) -> Client:
    await server.store.ensure_user("ann")
    c = await Client.connect(server.ports.imap)
    assert (await c.line()).startswith(b"* OK [CAPABILITY ")
    assert b"a OK" in await c.cmd(b"a LOGIN ann pw")
    return c


async def test_fault_fail_delay_and_trace(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("ann")
        await server.store.deliver("ann", MSG)
        c = await logged_in(server)
        faults = server.context.faults
        faults.fail("imap", "SELECT", "NO [UNAVAILABLE] try later")
        assert await c.cmd(b"b SELECT INBOX") == b"b NO [UNAVAILABLE] try later\r\n"
        faults.delay("imap", "SELECT", 0.05)
        assert (await c.cmd(b"c SELECT INBOX")).endswith(b"c OK [READ-WRITE] Select completed.\r\n")
        faults.fail("imap", "UID FETCH", "NO nope")
        assert await c.cmd(b"d UID FETCH 1 FLAGS") == b"d NO nope\r\n"
        await c.cmd(b"e LOGOUT")
        await c.close()
        lines = [(t.direction, t.text) for t in server.context.tracer.lines if t.protocol == "imap"]
        assert ("C", "a LOGIN ann ***") in lines
        assert ("C", "b SELECT INBOX") in lines
        assert any(d == "S" and "b NO [UNAVAILABLE]" in text for d, text in lines)
        assert not any("pw" in text.split() for _, text in lines)


async def test_fault_drop_halfway_through_a_literal(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("ann")
        await server.store.deliver("ann", MSG)
        c = await logged_in(server)
        await c.cmd(b"b SELECT INBOX")
        server.context.faults.drop("imap", "FETCH", after_bytes=100)
        c.writer.write(b"c FETCH 1 BODY.PEEK[]\r\n")
        data = await asyncio.wait_for(c.reader.read(), 10)
        assert data.startswith(b"* 1 FETCH (BODY[] {") and len(data) == 100
        await c.close()


async def test_sessions_registry_and_shutdown_bye(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        c = await logged_in(server)
        await c.cmd(b"b SELECT INBOX")
        [info] = [s for s in server.context.sessions.live.values() if s.protocol == "imap"]
        assert info.user == "ann" and info.state == "selected INBOX"
        ctx = server.context
    assert await c.line() == b"* BYE [UNAVAILABLE] Server shutting down\r\n"
    assert await c.line() == b""
    assert not [s for s in ctx.sessions.live.values() if s.protocol == "imap"]
    await c.close()


async def test_too_many_connections(make_server: Any) -> None:
    limits = dataclasses.replace(Limits(auth_failure_delay=0.0), connections_total=1)
    async with make_server(services={"imap"}, limits=limits) as server:
        first = await Client.connect(server.ports.imap)
        assert (await first.line()).startswith(b"* OK")
        second = await Client.connect(server.ports.imap)
        assert await second.line() == b"* BYE [UNAVAILABLE] too many connections\r\n"
        await second.close()
        await first.close()


async def test_preauth_autologout(make_server: Any) -> None:
    limits = dataclasses.replace(Limits(auth_failure_delay=0.0), preauth_timeout=0.2)
    async with make_server(services={"imap"}, limits=limits) as server:
        c = await Client.connect(server.ports.imap)
        await c.line()
        assert await c.line() == b"* BYE Autologout; idle for too long\r\n"
        assert await c.line() == b""
        await c.close()


async def test_long_line_and_pipelining(make_server: Any) -> None:
    limits = dataclasses.replace(Limits(auth_failure_delay=0.0), imap_line=1000)
    async with make_server(services={"imap"}, limits=limits) as server:
        c = await logged_in(server)
        c.writer.write(b"x1 LIST " + b"a" * 3000 + b"\r\nx2 NOOP\r\nx3 NOOP\r\n")
        assert await c.line() == b"x1 BAD Command line too long\r\n"
        assert await c.line() == b"x2 OK Noop completed.\r\n"
        assert await c.line() == b"x3 OK Noop completed.\r\n"
        await c.close()


async def test_starttls_discards_pipelined_plaintext(make_server: Any, certs_dir: Path) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("ann")
        c = await Client.connect(server.ports.imap)
        greeting = await c.line()
        assert b"STARTTLS" in greeting
        c.writer.write(b"a STARTTLS\r\nb LOGIN ann pw\r\n")  # b must be ignored (RFC 9051 §6.2.1)
        assert await c.line() == b"a OK Begin TLS negotiation now.\r\n"
        await c.writer.start_tls(
            client_ssl_context(certs_dir / "ca.pem"), server_hostname="localhost"
        )
        reply = await c.cmd(b"c CAPABILITY")
        assert b"STARTTLS" not in reply and reply.endswith(b"c OK Capability completed.\r\n")
        assert (await c.cmd(b"d LOGIN ann pw")).startswith(b"d OK")
        await c.close()


async def test_client_that_stops_reading_is_bounded(make_server: Any) -> None:
    limits = dataclasses.replace(
        Limits(auth_failure_delay=0.0), output_buffer=64 * 1024, imap_idle_timeout=0.5
    )
    async with make_server(services={"imap"}, limits=limits) as server:
        await server.store.ensure_user("ann")
        for _ in range(50):
            await server.store.deliver("ann", MSG * 20)
        c = await logged_in(server)
        await c.cmd(b"b SELECT INBOX")
        for i in range(20):
            c.writer.write(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i)
        await asyncio.sleep(1.5)  # never read: the server gives up instead of buffering
        live = [s for s in server.context.sessions.live.values() if s.protocol == "imap"]
        assert live == []
        c.writer.close()


async def test_recent_is_claimed_once_over_ports_and_servers_of_one_store(
    make_server: Any, certs_dir: Path
) -> None:
    """Who saw a message first (\\Recent) is the store's: both ports of one server, and a
    second server in the same process on the same store, see one claim."""
    from mailsrv.store.memory import MemoryStore

    store = MemoryStore()
    await store.ensure_user("ann")
    await store.deliver("ann", MSG)
    async with (
        make_server(store, services={"imap", "imaps"}) as one,
        make_server(store, services={"imap"}) as two,
    ):
        first = await logged_in(one)
        assert b"* 1 RECENT" in await first.cmd(b"s SELECT INBOX")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            one.ports.imaps,
            ssl=client_ssl_context(certs_dir / "ca.pem"),
            server_hostname="localhost",
        )
        tls = Client(reader, writer)
        assert (await tls.line()).startswith(b"* OK")
        assert b"a OK" in await tls.cmd(b"a LOGIN ann pw")
        assert b"* 0 RECENT" in await tls.cmd(b"s SELECT INBOX")  # claimed on port 143
        other = await logged_in(two)
        assert b"* 0 RECENT" in await other.cmd(b"s SELECT INBOX")  # the store's claim
        for c in (first, tls, other):
            await c.close()
