"""Whole message bodies sent from their Maildir file (``sendfile``) on plain connections.

The bytes on the wire must be exactly those of the normal path (the message read into memory):
for POP3 RETR and IMAP BODY.PEEK[] / BODY[] / RFC822, plain and TLS, with faults armed, with a
client that reads slowly, and when the file vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import mailsrv.imap.connection as imap_connection
import mailsrv.pop3.listener as pop3_listener
from mailsrv.server import MailServer
from mailsrv.store.base import MessageGone
from mailsrv.store.mailbox import WireFile, open_wire_file, send_wire_file
from mailsrv.tls import client_ssl_context

LINE = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
#: Big enough for the file path (32 KB and up), no line starting with ".".
BIG = b"Subject: big\r\nFrom: a@example.org\r\n\r\n" + LINE * 3000
#: Lines starting with "." need stuffing: never sent from the file by POP3.
DOTTED = b"Subject: dots\r\n\r\n" + (LINE + b".hidden line\r\n") * 1500
SMALL = b"Subject: small\r\n\r\nshort body\r\n"


_open: list[Client] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _open:
        await _open.pop().close()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        _open.append(self)

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext | None = None) -> Client:
        host = "localhost" if tls else "127.0.0.1"
        reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=1 << 24)
        return cls(reader, writer)

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 10)

    async def until(self, marker: bytes) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(marker), 20)

    async def exactly(self, n: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), 20)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def rest(self) -> bytes:
        return await asyncio.wait_for(self.reader.read(), 10)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


class Counter:
    """Wraps ``send_wire_file`` where an adapter uses it, counting the files sent."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, writer: asyncio.StreamWriter, body: WireFile, patience: float) -> None:
        self.calls += 1
        await send_wire_file(writer, body, patience)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter()
    monkeypatch.setattr(pop3_listener, "send_wire_file", counter)
    monkeypatch.setattr(imap_connection, "send_wire_file", counter)
    return counter


@contextlib.asynccontextmanager
async def serve(make_server: Any, *messages: bytes, **kw: Any) -> AsyncIterator[MailServer]:
    async with make_server(services={"pop3", "pop3s", "imap", "imaps"}, **kw) as server:
        await server.store.ensure_user("ann")
        for msg in messages:
            await server.store.deliver("ann", msg)
        yield server


# -- POP3 ---------------------------------------------------------------------------------------


async def pop3(port: int, tls: ssl.SSLContext | None = None) -> Client:
    c = await Client.connect(port, tls)
    assert (await c.line()).startswith(b"+OK")
    await c.send(b"USER ann\r\nPASS pw\r\n")
    assert await c.line() == b"+OK\r\n"
    assert (await c.line()).startswith(b"+OK ann has")
    return c


async def retr(c: Client, n: int) -> bytes:
    await c.send(b"RETR %d\r\n" % n)
    return await c.until(b"\r\n.\r\n")


async def test_pop3_retr_from_file_is_byte_identical(
    make_server: Any, certs_dir: Path, sent: Counter
) -> None:
    async with serve(make_server, BIG, DOTTED, SMALL) as server:
        c = await pop3(server.ports.pop3 or 0)
        first = [await retr(c, n) for n in (1, 2, 3)]
        assert sent.calls == 1  # only BIG: DOTTED needs stuffing, SMALL is small
        again = [await retr(c, n) for n in (1, 2, 3)]
        assert sent.calls == 2
        assert again == first
        assert first[0] == b"+OK %d octets\r\n" % len(BIG) + BIG + b".\r\n"
        assert first[1].count(b"\r\n..hidden line\r\n") == 1500
        # Pipelined, with small replies on both sides of the file.
        await c.send(b"NOOP\r\nRETR 1\r\nNOOP\r\n")
        assert await c.line() == b"+OK\r\n"
        assert await c.until(b"\r\n.\r\n") == first[0]
        assert await c.line() == b"+OK\r\n"
        assert sent.calls == 3
        await c.close()
        # Over TLS the normal path gives the same bytes.
        t = await pop3(server.ports.pop3s or 0, client_ssl_context(certs_dir / "ca.pem"))
        assert [await retr(t, n) for n in (1, 2, 3)] == first
        assert sent.calls == 3
        await t.close()
        # The transcript shows the file's reply as it shows a read one.
        replies = [x.text for x in server.context.tracer.lines if x.text.startswith("+OK 2")]
        assert len(set(replies)) == 1 and len(replies) >= 4


async def test_pop3_fault_armed_takes_the_normal_path(make_server: Any, sent: Counter) -> None:
    async with serve(make_server, BIG) as server:
        c = await pop3(server.ports.pop3 or 0)
        assert await retr(c, 1) == b"+OK %d octets\r\n" % len(BIG) + BIG + b".\r\n"
        assert sent.calls == 1
        server.context.faults.drop("pop3", "RETR", after_bytes=100)
        await c.send(b"RETR 1\r\n")
        assert await c.rest() == (b"+OK %d octets\r\n" % len(BIG) + BIG)[:100]
        assert sent.calls == 1
        await c.close()


async def test_pop3_slow_reader_gets_the_whole_file(make_server: Any, sent: Counter) -> None:
    huge = b"Subject: huge\r\n\r\n" + LINE * 120_000  # ~8.6 MB: more than the socket holds
    async with serve(make_server, huge) as server:
        c = await pop3(server.ports.pop3 or 0)
        await c.send(b"RETR 1\r\nNOOP\r\n")
        await asyncio.sleep(0.2)  # let the socket fill up
        assert await c.until(b"\r\n.\r\n") == b"+OK %d octets\r\n" % len(huge) + huge + b".\r\n"
        assert await c.line() == b"+OK\r\n"
        assert sent.calls == 1
        await c.close()


# -- IMAP ---------------------------------------------------------------------------------------


async def imap(port: int, tls: ssl.SSLContext | None = None) -> Client:
    c = await Client.connect(port, tls)
    assert (await c.line()).startswith(b"* OK")
    await c.send(b"a LOGIN ann pw\r\nb SELECT INBOX\r\n")
    await c.until(b"\r\nb OK")
    await c.line()
    return c


async def fetch(c: Client, command: bytes) -> bytes:
    await c.send(b"f " + command + b"\r\n")
    return await c.until(b"\r\nf OK Fetch completed.\r\n")


COMMANDS = (
    b"UID FETCH 1:3 BODY.PEEK[]",
    b"FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[] INTERNALDATE)",
    b"FETCH 1 (BODY.PEEK[] BODY.PEEK[]<0.100> BODY.PEEK[HEADER])",
)


async def test_imap_whole_body_from_file_is_byte_identical(
    make_server: Any, certs_dir: Path, sent: Counter
) -> None:
    async with serve(make_server, BIG, DOTTED, SMALL) as server:
        t = await imap(server.ports.imaps or 0, client_ssl_context(certs_dir / "ca.pem"))
        over_tls = [await fetch(t, cmd) for cmd in COMMANDS]
        assert sent.calls == 0
        c = await imap(server.ports.imap or 0)
        plain = [await fetch(c, cmd) for cmd in COMMANDS]
        assert sent.calls == 2 + 2 + 1  # BIG and DOTTED each time (SMALL is small)
        assert plain == over_tls
        assert b"BODY[] {%d}\r\n" % len(BIG) + BIG + b")\r\n" in plain[0]
        assert b"BODY[] {%d}\r\n" % len(DOTTED) + DOTTED + b")\r\n" in plain[0]
        # RFC822 and BODY[] set \Seen and report it after the file.
        both = await fetch(c, b"FETCH 1:2 (RFC822 BODY[])")
        assert sent.calls == 5 + 4
        for n, msg in ((1, BIG), (2, DOTTED)):
            literal = b"{%d}\r\n" % len(msg) + msg
            expected = b"* %d FETCH (RFC822 %s BODY[] %s FLAGS (\\Seen))\r\n" % (
                n,
                literal,
                literal,
            )
            assert expected in both
        store = await server.store.open("ann")
        assert [("\\Seen" in m.flags) for m in (await store.snapshot()).messages] == [
            True,
            True,
            False,
        ]


async def test_imap_fault_armed_takes_the_normal_path(make_server: Any, sent: Counter) -> None:
    async with serve(make_server, BIG) as server:
        c = await imap(server.ports.imap or 0)
        server.context.faults.drop("imap", "UID FETCH", after_bytes=200)
        await c.send(b"f UID FETCH 1 BODY.PEEK[]\r\n")
        data = await c.rest()
        assert data == (b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(BIG) + BIG)[:200]
        assert sent.calls == 0
        await c.close()


async def test_imap_slow_reader_and_pipelining(make_server: Any, sent: Counter) -> None:
    huge = b"Subject: huge\r\n\r\n" + LINE * 120_000
    async with serve(make_server, huge, BIG) as server:
        c = await imap(server.ports.imap or 0)
        await c.send(b"f UID FETCH 1:2 BODY.PEEK[]\r\nn NOOP\r\n")
        await asyncio.sleep(0.2)
        head = b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(huge)
        assert await c.exactly(len(head) + len(huge) + 3) == head + huge + b")\r\n"
        head = b"* 2 FETCH (UID 2 BODY[] {%d}\r\n" % len(BIG)
        assert await c.exactly(len(head) + len(BIG) + 3) == head + BIG + b")\r\n"
        assert await c.line() == b"f OK Fetch completed.\r\n"
        assert await c.line() == b"n OK Noop completed.\r\n"
        assert sent.calls == 2
        await c.close()


async def test_imap_vanished_file_answers_gone(make_server: Any, sent: Counter) -> None:
    async with serve(make_server, BIG, BIG) as server:
        c = await imap(server.ports.imap or 0)
        mailbox = await server.store.open("ann")
        found = await mailbox.wire_file(1)
        assert found is not None and found[1] == len(BIG)
        os.remove(found[0])  # gone behind the server's back, after the session's snapshot
        await c.send(b"f UID FETCH 1:2 BODY.PEEK[]\r\n")
        data = await c.until(b"\r\nf NO [EXPUNGEISSUED]")
        assert b"UID 1 " not in data
        assert b"* 2 FETCH (UID 2 BODY[] {%d}\r\n" % len(BIG) + BIG + b")\r\n" in data
        assert sent.calls == 1
        await c.close()


# -- the store ----------------------------------------------------------------------------------


async def test_wire_file_and_open(make_server: Any) -> None:
    async with serve(make_server, BIG, b"Subject: lf\n\nbare LF line ends\n") as server:
        mailbox = await server.store.open("ann")
        path, size = await mailbox.wire_file(1) or ("", 0)
        assert Path(path).read_bytes() == BIG and size == len(BIG)
        assert await mailbox.read(2) == b"Subject: lf\r\n\r\nbare LF line ends\r\n"
        body = await open_wire_file(mailbox, 1)
        assert body is not None and len(body) == len(BIG)
        body.close()
        body.close()  # twice is fine
        os.remove(path)
        assert await open_wire_file(mailbox, 1) is None  # the caller reads: retry, or gone
        with pytest.raises(MessageGone):
            await mailbox.read(1)
        with pytest.raises(MessageGone):
            await mailbox.wire_file(99)


async def test_memory_store_has_no_files() -> None:
    from mailsrv.store.memory import MemoryStore

    store = MemoryStore()
    await store.ensure_user("ann")
    uid = await store.deliver("ann", BIG)
    mailbox = await store.open("ann")
    assert await mailbox.wire_file(uid) is None
    assert await open_wire_file(mailbox, uid) is None
    with pytest.raises(MessageGone):
        await mailbox.wire_file(uid + 1)
