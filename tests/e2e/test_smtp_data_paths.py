"""SMTP DATA's checks and the ways around the whole-chunk reader, end to end: every refusal of
DATA says what aiosmtpd's own ``smtp_DATA`` says, and the bytes pipelined after it are commands
again; a DATA line read as an AUTH response, plaintext pipelined behind STARTTLS and a client
that goes quiet in the middle of a message are each handled as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from tests.e2e.netclient import Conn, close_all

pytestmark = pytest.mark.timeout(60)

MAIL = b"MAIL FROM:<b@example.org>\r\n"
ENVELOPE = MAIL + b"RCPT TO:<alice@localhost>\r\n"
MESSAGE = b"Subject: hi\r\n\r\n..dotted\r\n.\r\n"


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


async def greeted(port: int | None) -> Conn:
    c = await Conn.open(port)
    assert (await c.line()).startswith(b"220 ")
    return c


async def ehlo(c: Conn) -> None:
    await c.send(b"EHLO client.test\r\n")
    await c.until(b"250 ")


async def subjects(server: MailServer, user: str) -> list[bytes]:
    if not await server.store.user_exists(user):
        return []
    mbox = await server.store.open(user)
    out = []
    for m in (await mbox.snapshot()).messages:
        data = await mbox.read(m.uid)
        out.extend(line for line in data.split(b"\r\n") if line.startswith(b"Subject: "))
    return out


# aiosmtpd 1.4.6's smtp_DATA, in the order it checks (our 530 is check_auth_needed's).
@pytest.mark.parametrize(
    ("service", "hello", "before", "data_line", "reply"),
    [
        ("smtp", False, b"", b"DATA\r\n", b"503 Error: send HELO first"),
        ("submission", True, b"", b"DATA\r\n", b"530 5.7.0 Authentication required"),
        ("smtp", True, MAIL, b"DATA\r\n", b"503 Error: need RCPT command"),
        ("smtp", True, ENVELOPE, b"DATA now\r\n", b"501 Syntax: DATA"),
    ],
)
async def test_refused_data_gives_aiosmtpds_reply_and_the_session_goes_on(
    make_server: Any, service: str, hello: bool, before: bytes, data_line: bytes, reply: bytes
) -> None:
    async with make_server(services={service}) as server:
        c = await greeted(getattr(server.ports, service))
        if hello:
            await ehlo(c)
        await c.send(before + data_line + b"NOOP\r\n")  # pipelined behind the refused DATA
        replies = [await c.line() for _ in range(before.count(b"\r\n") + 2)]
        assert replies[-2] == reply + b"\r\n"
        assert replies[-1].startswith(b"250 ")


async def test_a_message_pipelined_behind_a_refused_data_is_not_delivered(make_server: Any) -> None:
    async with make_server(services={"smtp"}) as server:
        c = await greeted(server.ports.smtp)
        await ehlo(c)
        await c.send(MAIL + b"DATA\r\nSubject: no\r\n.\r\nQUIT\r\n")
        replies = [line[:3] for line in (await c.closed()).split(b"\r\n") if line]
        assert replies[:2] == [b"250", b"503"]
        assert replies[-1] == b"221"
        assert await subjects(server, "alice") == []


async def test_after_an_auth_exchange_messages_still_arrive(make_server: Any) -> None:
    async with make_server(services={"submission"}) as server:
        c = await greeted(server.ports.submission)
        await ehlo(c)
        await c.send(b"AUTH LOGIN\r\n")
        assert (await c.line()).startswith(b"334 ")
        await c.send(b"YWxpY2U=\r\n")  # alice
        assert (await c.line()).startswith(b"334 ")
        await c.send(b"c2VjcmV0\r\n" + ENVELOPE + b"DATA\r\n" + MESSAGE)  # the password
        replies = [(await c.line())[:3] for _ in range(5)]
        assert replies == [b"235", b"250", b"250", b"354", b"250"]
        await c.send(ENVELOPE + b"DATA\r\n" + MESSAGE + b"QUIT\r\n")
        replies = [line[:3] for line in (await c.closed()).split(b"\r\n") if line]
        assert replies == [b"250", b"250", b"354", b"250", b"221"]
        assert await subjects(server, "alice") == [b"Subject: hi", b"Subject: hi"]


async def test_a_data_line_read_as_an_auth_response_does_not_stall(make_server: Any) -> None:
    async with make_server(services={"submission"}) as server:
        c = await greeted(server.ports.submission)
        await ehlo(c)
        await c.send(b"AUTH LOGIN\r\n")
        assert (await c.line()).startswith(b"334 ")
        await c.send(b"DATA\r\n")  # valid base64, but not a user name
        reply = await c.line()
        if reply.startswith(b"334 "):
            await c.send(b"c2VjcmV0\r\n")
            reply = await c.line()
        assert reply[:1] in (b"5", b"2")
        await c.send(b"NOOP\r\n")
        assert (await c.line()).startswith(b"250 ")


async def test_plaintext_pipelined_behind_starttls_is_discarded(
    make_server: Any, certs_dir: Any
) -> None:
    async with make_server(services={"smtp"}) as server:
        c = await greeted(server.ports.smtp)
        await ehlo(c)
        injected = ENVELOPE + b"DATA\r\nSubject: injected\r\n\r\n.\r\n"
        await c.send(b"STARTTLS\r\n" + injected)  # RFC 3207 §4.2: must be thrown away
        assert (await c.line()).startswith(b"220 ")
        await c.start_tls(certs_dir)
        await ehlo(c)
        await c.send(ENVELOPE + b"DATA\r\n" + MESSAGE + b"QUIT\r\n")
        replies = [line[:3] for line in (await c.closed()).split(b"\r\n") if line]
        assert replies == [b"250", b"250", b"354", b"250", b"221"]
        assert await subjects(server, "alice") == [b"Subject: hi"]


async def test_a_client_silent_in_the_middle_of_a_message_is_told_and_closed(
    make_server: Any,
) -> None:
    limits = Limits(auth_failure_delay=0.0, smtp_timeout=0.5)
    async with make_server(services={"smtp"}, limits=limits) as server:
        c = await greeted(server.ports.smtp)
        await ehlo(c)
        await c.send(ENVELOPE + b"DATA\r\nSubject: half\r\n")  # and then nothing
        rest = await c.closed()
        assert rest.endswith(b"421 4.4.2 Idle for too long; closing\r\n")
        assert await subjects(server, "alice") == []


async def test_a_big_message_sent_ahead_of_the_replies_arrives_whole(make_server: Any) -> None:
    """More than ``HOLD_LIMIT`` sent before the 354 (reading pauses, then resumes)."""
    body = b"".join(b"%07d " % n + b"z" * 90 + b"\r\n" for n in range(20_000))  # ~2 MB
    async with make_server(services={"smtp"}) as server:
        server.context.faults.delay("smtp", "RCPT", 0.5)  # the message arrives while RCPT waits
        c = await greeted(server.ports.smtp)
        await ehlo(c)
        await c.send(ENVELOPE + b"DATA\r\nSubject: big\r\n\r\n" + body + b".\r\n" + b"QUIT\r\n")
        replies = [line[:3] for line in (await c.closed()).split(b"\r\n") if line]
        assert replies == [b"250", b"250", b"354", b"250", b"221"]
        mbox = await server.store.open("alice")
        [message] = (await mbox.snapshot()).messages
        assert (await mbox.read(message.uid)).endswith(b"\r\n\r\n" + body)


async def test_a_data_refused_by_a_fault_hands_what_follows_back_to_the_commands(
    make_server: Any,
) -> None:
    async with make_server(services={"smtp"}) as server:
        server.context.faults.fail("smtp", "DATA", "451 4.3.0 not now")
        c = await greeted(server.ports.smtp)
        await ehlo(c)
        await c.send(ENVELOPE + b"DATA\r\n")
        assert [(await c.line())[:3] for _ in range(3)] == [b"250", b"250", b"451"]
        await c.send(b"RSET\r\n" + ENVELOPE + b"DATA\r\n" + MESSAGE + b"QUIT\r\n")
        replies = [line[:3] for line in (await c.closed()).split(b"\r\n") if line]
        assert replies == [b"250", b"250", b"250", b"354", b"250", b"221"]
        assert await subjects(server, "alice") == [b"Subject: hi"]
