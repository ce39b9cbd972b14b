"""SMTP DATA in large pieces, end to end: a message sent byte by byte, dot-stuffing, bare LF, a
session pipelined through two messages, an oversized message refused while the session goes on."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.message.wire import to_wire
from mailsrv.server import MailServer
from mailsrv.store.memory import MemoryStore
from tests.e2e.netclient import Conn, close_all

pytestmark = pytest.mark.timeout(60)

#: The message as the client means it: a line that is one dot, lines that start with dots, a
#: bare LF, a bare CR, a line ending in a dot.
MEANT = b"Subject: dots\r\n\r\n.\r\n..two\r\n.leading\r\nbare\nLF\r\ncr\rhere\r\nthe end.\r\n"
STUFFED = MEANT.replace(b"\r\n.", b"\r\n..")


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


async def stored(server: MailServer, user: str) -> list[bytes]:
    """The messages of ``user``'s INBOX without the ``Received:`` header mailsrv adds."""
    mbox = await server.store.open(user)
    out = []
    for m in (await mbox.snapshot()).messages:
        data = await mbox.read(m.uid)
        assert data.startswith(b"Received: ")
        out.append(data.split(b"\r\n", 3)[3])
    return out


async def session(server: MailServer) -> Conn:
    c = await Conn.open(server.ports.smtp)
    assert (await c.line()).startswith(b"220 ")
    await c.send(b"EHLO client.test\r\n")
    await c.until(b"250 ")
    return c


@pytest.mark.parametrize("store_kind", ["memory", "maildir"])
async def test_data_byte_by_byte(make_server: Any, store_kind: str) -> None:
    store = MemoryStore() if store_kind == "memory" else None
    async with make_server(services={"smtp"}, store=store) as server:
        c = await session(server)
        await c.send(b"MAIL FROM:<b@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
        assert [(await c.line())[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        for byte in STUFFED + b".\r\n":
            await c.send(bytes([byte]))
        assert (await c.line()).startswith(b"250 2.0.0 OK: queued as ")
        assert await stored(server, "alice") == [to_wire(MEANT)]


async def test_next_mail_pipelined_after_the_dot(make_server: Any) -> None:
    async with make_server(services={"smtp"}) as server:
        c = await session(server)
        envelope = b"MAIL FROM:<b@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
        await c.send(
            envelope + b".\r\n"  # an empty message
            + envelope + STUFFED + b".\r\n"
            + b"MAIL FROM:<b@example.org>\r\nRCPT TO:<alice@localhost>\r\nRSET\r\nQUIT\r\n"
        )  # fmt: skip
        replies = [line[:3] for line in (await c.closed()).split(b"\r\n") if line]
        assert replies == [b"250", b"250", b"354", b"250"] * 2 + [b"250", b"250", b"250", b"221"]
        assert await stored(server, "alice") == [b"", to_wire(MEANT)]


async def test_oversized_message_refused_and_the_session_goes_on(make_server: Any) -> None:
    limits = Limits(auth_failure_delay=0.0, message_size=2000)
    async with make_server(services={"smtp"}, limits=limits) as server:
        c = await session(server)
        await c.send(b"MAIL FROM:<b@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
        assert [(await c.line())[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        line = b"x" * 998 + b"\r\n"
        for _ in range(2000):  # 2 MB, a thousand times the limit
            await c.send(line)
        await c.send(b".\r\nNOOP\r\n")
        assert (await c.line()).startswith(b"552 ")
        assert (await c.line()).startswith(b"250 ")  # the NOOP: the session goes on
        assert not await server.store.user_exists("alice") or await stored(server, "alice") == []


async def test_line_too_long_is_500(make_server: Any) -> None:
    async with make_server(services={"smtp"}) as server:
        c = await session(server)
        await c.send(b"MAIL FROM:<b@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
        assert [(await c.line())[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        await c.send(b"Subject: long\r\n\r\n" + b"y" * 200_000 + b"\r\n.\r\nNOOP\r\n")
        assert (await c.line()).startswith(b"500 ")
        assert (await c.line()).startswith(b"250 ")


async def test_smtplib_round_trip_of_dotted_lines(make_server: Any) -> None:
    async with make_server(services={"smtp"}) as server:

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", server.ports.smtp, timeout=10) as client:
                client.sendmail("b@example.org", ["alice@localhost"], MEANT)

        await asyncio.to_thread(send)
        assert await stored(server, "alice") == [to_wire(MEANT)]
