"""Scanning engines that fail: refused, silent, answering garbage, or busy. Mail is never lost
nor held past the timeout: it is delivered with ``unscanned`` verdicts, and the log says why
once per outage (and once when the engine is back). The engines here are small asyncio servers
on loopback speaking (or not) the spamc and clamd protocols, so no daemon is needed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from mailsrv.scan.probe import probe
from mailsrv.scan.settings import ScanSettings
from mailsrv.server import MailServer
from mailsrv.testing import AsyncMailServer

pytestmark = pytest.mark.timeout(60)

MESSAGE = b"From: bob@example.org\r\nTo: alice@localhost\r\nSubject: hi\r\n\r\nHello.\r\n"
REPORT = (
    "Spam detection software has NOT identified this incoming email as spam.\n\n"
    "Content analysis details:   (0.5 points, 5.0 required)\n\n"
    " pts rule name              description\n"
    "---- ---------------------- --------------------------------------------------\n"
    " 0.5 MISSING_DATE           Missing Date: header\n\n"
)
GOOD_SPAMD = (
    f"SPAMD/1.1 0 EX_OK\r\nContent-length: {len(REPORT)}\r\nSpam: False ; 0.5 / 5.0\r\n\r\n{REPORT}"
).encode()

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def engine(handler: Handler) -> AsyncIterator[int]:
    """A server on 127.0.0.1 running ``handler`` per connection; yields its port. Connections
    still open at the end are cut (a handler may never finish)."""
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.transport.abort()
            tasks.discard(task)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def answering(reply: bytes, delay: float = 0.0, seen: list[int] | None = None) -> Handler:
    """A handler that reads the request (spamc: up to its message; clamd: to the zero chunk),
    waits ``delay`` and sends ``reply``; ``seen`` counts connections open at once."""
    live = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        live[0] += 1
        if seen is not None:
            seen.append(live[0])
        try:
            first = await reader.read(100)
            if first.startswith(b"REPORT"):
                while not (first.endswith(b"Hello.\r\n") or reader.at_eof()):
                    first += await reader.read(65536)
            elif first.startswith(b"zINSTREAM"):
                while not first.endswith(b"\0\0\0\0"):
                    first += await reader.read(65536)
            await asyncio.sleep(delay)
            writer.write(reply)
            await writer.drain()
        finally:
            live[0] -= 1
            writer.close()

    return handle


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and never answers (the client's timeout must end it)."""
    await reader.read()
    writer.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port with a socket bound but not listening: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def send(port: int, count: int = 1) -> list[tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.test")
        replies = []
        for _ in range(count):
            client.mail("bob@example.org")
            client.rcpt("alice@localhost")
            replies.append(client.data(MESSAGE))
        return replies


async def inbox(server: MailServer) -> list[bytes]:
    mbox = await server.store.open("alice")
    return [await mbox.read(m.uid) for m in (await mbox.snapshot()).messages]


def scan_lines(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mailsrv.scan" and word in r.getMessage()
    ]


async def test_engines_down_mail_is_delivered_unscanned_one_log_line(
    make_server: Any, refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mailsrv.scan")
    settings = ScanSettings(
        spam=f"spamc://127.0.0.1:{refused_port}", virus=f"clamd://127.0.0.1:{refused_port}"
    )
    async with make_server(services={"smtp"}, scan=settings) as server:
        replies = await asyncio.to_thread(send, server.ports.smtp, 3)
        stored = await inbox(server)
        metrics = server.context.metrics.render([])
    assert [code for code, _ in replies] == [250, 250, 250]
    assert len(stored) == 3
    for data in stored:
        head = data.split(b"\r\n\r\n")[0]
        assert b"X-Spam-Status: unscanned\r\n" in head
        assert b"X-Virus-Status: unscanned\r\n" in head
    assert 'mailsrv_scans_total{engine="spam",result="unscanned"} 3' in metrics
    assert 'mailsrv_scans_total{engine="virus",result="unscanned"} 3' in metrics
    down = scan_lines(caplog, "unavailable")
    assert len(down) == 2  # one per engine, not one per message
    logged = [r for r in caplog.records if r.name == "mailsrv.scan" and r.levelno >= logging.INFO]
    assert len(logged) == 2  # and no verdict line per message while they are down
    assert any("spam scanning" in line and "cannot connect" in line for line in down)
    assert any("virus scanning" in line for line in down)


async def test_a_silent_engine_costs_at_most_the_timeout(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mailsrv.scan")
    async with engine(silent) as port:
        settings = ScanSettings(spam=f"spamc://127.0.0.1:{port}", timeout=0.3)
        async with make_server(services={"smtp"}, scan=settings) as server:
            [(code, _)] = await asyncio.to_thread(send, server.ports.smtp)
            [data] = await inbox(server)
    assert code == 250
    assert b"X-Spam-Status: unscanned" in data
    assert b"X-Virus-Status" not in data  # no virus engine configured
    assert any("no answer within 0.3 s" in line for line in scan_lines(caplog, "unavailable"))


@pytest.mark.parametrize(
    ("kind", "reply", "reason"),
    [
        ("spamc", b"HELLO WORLD\r\n", "not a spamd reply"),
        ("spamc", b"SPAMD/1.0 76 Bad header line: x\r\n", "spamd answered 76"),
        ("spamc", b"SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\n\r\nabc", "no Spam:"),
        ("clamd", b"INSTREAM size limit exceeded. ERROR\0", "not a clamd reply"),
        ("clamd", b"stream: Can't allocate memory ERROR\0", "clamd answered"),
    ],
)
async def test_garbage_answers_mean_unscanned(
    make_server: Any, caplog: pytest.LogCaptureFixture, kind: str, reply: bytes, reason: str
) -> None:
    caplog.set_level(logging.INFO, "mailsrv.scan")
    async with engine(answering(reply)) as port:
        field = "spam" if kind == "spamc" else "virus"
        settings = ScanSettings(**{field: f"{kind}://127.0.0.1:{port}"}, timeout=5.0)
        async with make_server(services={"smtp"}, scan=settings) as server:
            [(code, _)] = await asyncio.to_thread(send, server.ports.smtp)
            [data] = await inbox(server)
    assert code == 250
    header = b"X-Spam-Status: unscanned" if kind == "spamc" else b"X-Virus-Status: unscanned"
    assert header in data
    assert any(reason in line for line in scan_lines(caplog, "unavailable"))


async def test_the_log_says_when_an_engine_is_back(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mailsrv.scan")
    async with engine(silent) as port:
        pass  # the port is free again: refused until the engine below takes it
    settings = ScanSettings(spam=f"spamc://127.0.0.1:{port}", timeout=5.0)
    async with make_server(services={"smtp"}, scan=settings) as server:
        await asyncio.to_thread(send, server.ports.smtp)
        back = await asyncio.start_server(answering(GOOD_SPAMD), "127.0.0.1", port)
        try:
            await asyncio.to_thread(send, server.ports.smtp, 2)
        finally:
            back.close()
            await back.wait_closed()
        first, *later = await inbox(server)
    assert b"X-Spam-Status: unscanned" in first
    for data in later:
        assert b"X-Spam-Status: No, score=0.5 required=5.0 tests=MISSING_DATE" in data
        assert b"*  0.5 MISSING_DATE Missing Date: header" in data
    assert len(scan_lines(caplog, "unavailable")) == 1
    assert len(scan_lines(caplog, "is back")) == 1


async def test_concurrency_is_bounded_and_every_message_is_scanned() -> None:
    seen: list[int] = []
    async with engine(answering(GOOD_SPAMD, delay=0.05, seen=seen)) as port:
        settings = {"spam": f"spamc://127.0.0.1:{port}", "concurrency": 2, "timeout": 30.0}
        async with AsyncMailServer(scan=settings, services={"smtp"}) as server:
            await asyncio.gather(*(server.deliver("alice", MESSAGE) for _ in range(8)))
            stored = await server.messages("alice")
    assert len(stored) == 8
    assert all(m.scan is not None and m.scan.spam_status == "no" for m in stored)
    assert len(seen) == 8 and max(seen) <= 2


async def test_fixture_deliveries_with_an_engine_down(refused_port: int) -> None:
    settings = {"spam": f"spamc://127.0.0.1:{refused_port}", "virus": "unix:/nonexistent/c"}
    async with AsyncMailServer(scan=settings, services={"smtp"}) as server:
        await server.deliver("alice", MESSAGE)
        [msg] = await server.messages("alice")
    assert msg.scan is not None
    assert msg.scan.spam_status == "unscanned" and msg.scan.virus_status == "unscanned"
    assert msg.scan.spam_score is None and msg.scan.virus is None


async def test_the_banner_says_an_engine_does_not_answer(refused_port: int) -> None:
    url = f"spamc://127.0.0.1:{refused_port}"
    settings, lines = await probe(ScanSettings(spam=url), look_locally=False)
    assert settings.spam == url  # kept: mail is delivered unscanned until it answers
    assert lines[0].startswith(f"spam   {url} (not answering: cannot connect")
    assert lines[1] == "virus  off"


async def test_fixture_deliveries_with_engines_answering_garbage() -> None:
    async with (
        engine(answering(b"SPAMD/1.1 0 EX_OK\r\n\r\nno verdict here")) as spam_port,
        engine(answering(b"PONG\0")) as virus_port,
    ):
        settings = {
            "spam": f"spamc://127.0.0.1:{spam_port}",
            "virus": f"clamd://127.0.0.1:{virus_port}",
        }
        async with AsyncMailServer(scan=settings, services={"smtp"}) as server:
            await server.deliver("alice", MESSAGE)
            [msg] = await server.messages("alice")
    assert msg.scan is not None
    assert (msg.scan.spam_status, msg.scan.virus_status) == ("unscanned", "unscanned")


async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and reads nothing: the client's writes back up until its timeout."""
    await asyncio.sleep(3600)


async def test_an_engine_that_stops_reading_a_big_message_costs_only_the_timeout() -> None:
    big = MESSAGE + (b"y" * 76 + b"\r\n") * 60_000  # 4.7 MB: more than the socket buffers
    async with engine(never_reads) as port:
        settings = {"virus": f"clamd://127.0.0.1:{port}", "timeout": 0.5}
        async with AsyncMailServer(scan=settings, services={"smtp"}) as server:
            await server.deliver("alice", big)
            [msg] = await server.messages("alice")
    assert msg.scan is not None and msg.scan.virus_status == "unscanned"
