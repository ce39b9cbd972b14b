"""MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) end to end over raw sockets and imapclient:
all or nothing (a bad second message adds none), APPENDUID with the UID set, LITERAL+ and
``~{n}`` literals in one command, URL parts relative to the selected mailbox, BADURL and TOOBIG."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from tests.e2e.netclient import Conn, close_all

pytestmark = pytest.mark.timeout(30)

ONE = b"From: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\n"
TWO = b"From: b@example.org\r\nSubject: two\r\n\r\nsecond body\r\n"


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


async def login(server: MailServer) -> Conn:
    conn = await Conn.open(server.ports.imap)
    await conn.line()
    await conn.send(b"l LOGIN alice pw\r\n")
    await conn.until(b"l OK")
    return conn


async def command(conn: Conn, data: bytes, tag: bytes) -> list[bytes]:
    await conn.send(data)
    return await conn.until(tag + b" ")


async def sync_literals(conn: Conn, head: bytes, literals: list[bytes], tail: bytes) -> bytes:
    """``head {n}`` ... with a wait for ``+`` before each literal; the tagged answer."""
    await conn.send(head + b" {%d}\r\n" % len(literals[0]))
    for i, lit in enumerate(literals):
        assert (await conn.line()).startswith(b"+ ")
        nxt = b" {%d}\r\n" % len(literals[i + 1]) if i + 1 < len(literals) else tail + b"\r\n"
        await conn.send(lit + nxt)
    return (await conn.until(head.split(b" ")[0] + b" "))[-1]


async def bodies(server: MailServer, folder: str = "INBOX") -> list[bytes]:
    mbox = await server.store.open("alice", folder)
    return [await mbox.read(m.uid) for m in (await mbox.snapshot()).messages]


async def test_multiappend_with_synchronizing_literals_and_appenduid(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        conn = await login(server)
        caps = await command(conn, b"c CAPABILITY\r\n", b"c")
        assert b" MULTIAPPEND " in caps[0] and b" CATENATE " in caps[0]
        done = await sync_literals(conn, b"a APPEND INBOX (\\Seen)", [ONE, TWO, ONE], b"")
        assert done.startswith(b"a OK [APPENDUID ")
        uidvalidity = (await (await server.store.open("alice")).snapshot()).uidvalidity
        assert done.split(b"]")[0] == b"a OK [APPENDUID %d 1:3" % uidvalidity
        assert await bodies(server) == [ONE, TWO, ONE]
        snap = await (await server.store.open("alice")).snapshot()
        assert [set(m.flags) for m in snap.messages] == [{"\\Seen"}, set(), set()]


async def test_literal_plus_and_binary_literals_in_one_command(make_server: Any) -> None:
    binary = b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01bin\r\n"
    async with make_server(services={"imap"}) as server:
        conn = await login(server)
        data = b"a APPEND INBOX {%d+}\r\n%s (\\Flagged) ~{%d+}\r\n%s\r\n" % (
            len(ONE),
            ONE,
            len(binary),
            binary,
        )
        for i in range(len(data)):  # one byte at a time, as a slow client sends it
            await conn.send(data[i : i + 1])
        [done] = await conn.until(b"a ")
        assert done.startswith(b"a OK [APPENDUID ") and b" 1:2] " in done
        stored = await bodies(server)
        assert stored[0] == ONE and b"Content-Transfer-Encoding: base64" in stored[1]
        got = await command(conn, b"s SELECT INBOX\r\nf FETCH 2 BINARY[1]\r\n", b"f")
        assert b"\x00\x01bin\r\n" in b"".join(got)


@pytest.mark.parametrize(
    "second",
    [
        b"{0}\r\n",  # an empty message
        b'CATENATE (URL "/INBOX/;UID=99")',  # a URL naming nothing
        b"(\\Bogus) {3}\r\nabc",  # a flag that is no flag: the whole command is BAD
    ],
)
async def test_a_bad_second_message_adds_none(make_server: Any, second: bytes) -> None:
    async with make_server(services={"imap"}) as server:
        conn = await login(server)
        await server.store.deliver("alice", TWO)
        head = b"a APPEND INBOX {%d+}\r\n%s " % (len(ONE), ONE)
        tail = second.replace(b"}\r\n", b"+}\r\n")
        answer = await command(conn, head + tail + b"\r\n", b"a")
        assert answer[-1].startswith((b"a NO ", b"a BAD ")), answer
        assert await bodies(server) == [TWO]
        assert (await command(conn, b"n NOOP\r\n", b"n"))[-1].startswith(b"n OK")
        assert await server.store.deliver("alice", ONE) == 2, "no UID was used up"


async def test_an_over_limit_second_literal_refuses_the_command(make_server: Any) -> None:
    async with make_server(services={"imap"}, limits=Limits(message_size=100)) as server:
        conn = await login(server)
        await conn.send(b"a APPEND INBOX {%d+}\r\n%s {200}\r\n" % (len(ONE), ONE))
        assert (await conn.line()).startswith(b"a NO [TOOBIG] ")
        assert (await command(conn, b"n NOOP\r\n", b"n"))[-1].startswith(b"n OK")
        assert not await server.store.user_exists("alice") or await bodies(server) == []


async def test_catenate_urls_texts_and_multiappend(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        conn = await login(server)
        await server.store.deliver("alice", ONE)
        uidvalidity = (await (await server.store.open("alice")).snapshot()).uidvalidity
        await command(conn, b"s SELECT INBOX\r\n", b"s")
        text = b"\r\nnew body\r\n"
        url = b'"/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=HEADER"' % uidvalidity
        data = (
            b"a APPEND Drafts (\\Draft) CATENATE (URL %s TEXT {%d+}\r\n%s)"
            b' CATENATE (URL ";UID=1/;SECTION=TEXT" URL "/INBOX/;UID=1/;PARTIAL=0.4")\r\n'
            % (url, len(text), text)
        )
        answer = await command(conn, data, b"a")
        assert answer[-1].startswith(b"a OK [APPENDUID "), answer
        header = ONE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        assert await bodies(server, "Drafts") == [header + text, b"first body\r\nFrom"]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        (b'"/INBOX;UIDVALIDITY=1/;UID=1"', b"BADURL /INBOX;UIDVALIDITY=1/;UID=1"),
        (b'"/Nowhere/;UID=1"', b"BADURL /Nowhere/;UID=1"),
        (b'"/INBOX/;UID=1/;SECTION=7"', b"BADURL /INBOX/;UID=1/;SECTION=7"),
        (b'"/INBOX/;UID=1;URLAUTH=anonymous"', b"BADURL /INBOX/;UID=1;URLAUTH=anonymous"),
        (b'";UID=1"', b"BADURL ;UID=1"),  # relative, but nothing is selected
        (b'"/a%2F..%2F..%2Fx/;UID=1"', b"BADURL /a%2F..%2F..%2Fx/;UID=1"),
        (b'"imap://bob@localhost/INBOX/;UID=1"', b"BADURL imap://bob@localhost/INBOX/;UID=1"),
    ],
)
async def test_bad_urls(make_server: Any, url: bytes, code: bytes) -> None:
    async with make_server(services={"imap"}) as server:
        conn = await login(server)
        await server.store.deliver("alice", ONE)
        answer = await command(conn, b"a APPEND Drafts CATENATE (URL %s)\r\n" % url, b"a")
        assert answer[-1].startswith(b"a NO [" + code + b"] "), answer
        assert await bodies(server, "Drafts") == []


async def test_catenate_result_over_the_limit_is_toobig(make_server: Any) -> None:
    async with make_server(services={"imap"}, limits=Limits(message_size=100)) as server:
        conn = await login(server)
        await server.store.deliver("alice", b"Subject: x\r\n\r\n" + b"y" * 80 + b"\r\n")
        url = b'URL "/INBOX/;UID=1"'
        answer = await command(conn, b"a APPEND Drafts CATENATE (%s %s)\r\n" % (url, url), b"a")
        assert answer[-1].startswith(b"a NO [TOOBIG] ")
        missing = await command(conn, b"b APPEND Nowhere CATENATE (%s)\r\n" % url, b"b")
        assert missing[-1].startswith(b"b NO [TRYCREATE] ")


async def test_imapclient_multiappend(make_server: Any) -> None:
    imapclient = pytest.importorskip("imapclient")
    async with make_server(services={"imap"}) as server:

        def run() -> bytes:
            c = imapclient.IMAPClient("127.0.0.1", port=server.ports.imap, ssl=False, timeout=10)
            try:
                c.login("alice", "pw")
                assert c.has_capability("MULTIAPPEND")
                msgs = [ONE.decode(), {"msg": TWO.decode(), "flags": ["\\Seen"]}]
                status, [line] = c.multiappend("INBOX", msgs)  # imaplib's (type, data)
                assert status == "OK"
                return bytes(line)
            finally:
                c.logout()

        answer = await asyncio.to_thread(run)
        assert answer.startswith(b"[APPENDUID ") and b" 1:2]" in answer
        assert await bodies(server) == [ONE, TWO]


async def test_an_absolute_url_with_the_users_own_name(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        conn = await login(server)
        await server.store.deliver("alice", ONE)
        url = b'"imap://alice@localhost/INBOX/;UID=1/;SECTION=TEXT"'
        answer = await command(conn, b"a APPEND Drafts CATENATE (URL %s)\r\n" % url, b"a")
        assert answer[-1].startswith(b"a OK [APPENDUID ")
        assert await bodies(server, "Drafts") == [b"first body\r\n"]
