"""Every limit of every listener over real sockets: the protocol's own answer, then a clean
close or a session that goes on. Limits are configured small (timeouts of ~0.5 s) to stay fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from tests.e2e.netclient import OPEN, Conn, close_all

pytestmark = pytest.mark.timeout(30)

MSG = b"From: a@example.org\r\nSubject: limits\r\n\r\nhello\r\n"


@pytest.fixture(autouse=True)
async def close_connections() -> AsyncIterator[None]:
    yield
    await close_all()


def limits(**kw: Any) -> Limits:
    return dataclasses.replace(Limits(auth_failure_delay=0.0), **kw)


@contextlib.asynccontextmanager
async def serve(make_server: Any, service: str, **kw: Any) -> AsyncIterator[MailServer]:
    """A server with one protocol (plus what it needs); users ann and bob (password pw)."""
    services = {"pop3": {"pop3"}, "imap": {"imap"}, "smtp": {"smtp", "submission"}}[service]
    async with make_server(services=services, **kw) as server:
        for user in ("ann", "bob"):
            server.context.auth.add_user(user, "pw")
            await server.store.ensure_user(user)
        await server.store.deliver("ann", MSG)
        yield server


# -- POP3 ---------------------------------------------------------------------------------------


async def pop3(server: MailServer, login: bool = False) -> Conn:
    c = await Conn.open(server.ports.pop3)  # type: ignore[arg-type]
    assert (await c.line()).startswith(b"+OK")
    if login:
        await c.send(b"USER ann\r\nPASS pw\r\n")
        assert await c.line() == b"+OK\r\n"
        assert (await c.line()).startswith(b"+OK ann has")
    return c


async def test_pop3_line_length(make_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    async with serve(make_server, "pop3", limits=limits(pop3_line=64)) as server:
        c = await pop3(server)
        await c.send(b"USER " + b"x" * 100 + b"\r\nCAPA\r\n")
        assert await c.line() == b"-ERR line too long\r\n"
        assert (await c.line()).startswith(b"+OK")  # the session goes on


async def test_pop3_connections_per_address(make_server: Any) -> None:
    async with serve(make_server, "pop3", dev=False, limits=limits(connections_per_ip=2)) as s:
        await pop3(s)
        await pop3(s)
        third = await Conn.open(s.ports.pop3)  # type: ignore[arg-type]
        assert await third.line() == b"-ERR [SYS/TEMP] too many connections\r\n"
        await third.closed()


async def test_pop3_connections_in_total(make_server: Any) -> None:
    async with serve(make_server, "pop3", limits=limits(connections_total=2)) as s:
        await pop3(s)
        await pop3(s)
        third = await Conn.open(s.ports.pop3)  # type: ignore[arg-type]
        assert await third.line() == b"-ERR [SYS/TEMP] too many connections\r\n"
        await third.closed()


async def test_pop3_failed_logins_per_connection(make_server: Any) -> None:
    async with serve(
        make_server, "pop3", dev=False, limits=limits(auth_failures_per_connection=2)
    ) as s:
        c = await pop3(s)
        await c.send(b"USER ann\r\nPASS bad\r\n")
        assert await c.line() == b"+OK\r\n"
        assert await c.line() == b"-ERR [AUTH] invalid credentials\r\n"
        await c.send(b"USER ann\r\nPASS bad\r\n")
        assert await c.line() == b"+OK\r\n"
        assert await c.line() == b"-ERR [AUTH] invalid credentials\r\n"
        await c.closed()


async def test_pop3_failed_logins_per_address_block(make_server: Any) -> None:
    lim = limits(auth_failures_per_ip=2, auth_block_seconds=60, auth_failures_per_connection=10)
    async with serve(make_server, "pop3", dev=False, limits=lim) as s:
        c = await pop3(s)
        for _ in range(2):
            await c.send(b"USER ann\r\nPASS bad\r\n")
            assert await c.line() == b"+OK\r\n"
            assert await c.line() == b"-ERR [AUTH] invalid credentials\r\n"
        # Even the right password is refused now, and the connection is closed.
        await c.send(b"USER ann\r\n")
        assert (await c.line()).startswith(b"-ERR [AUTH] too many failed logins")
        await c.closed()
        late = await Conn.open(s.ports.pop3)  # type: ignore[arg-type]
        assert (await late.line()).startswith(b"-ERR [AUTH] too many failed logins")
        await late.closed()


async def test_pop3_failure_delay_grows(make_server: Any) -> None:
    lim = limits(auth_failure_delay=0.1, auth_failures_per_connection=20)
    async with serve(make_server, "pop3", dev=False, limits=lim) as s:
        c = await pop3(s)
        took = []
        for _ in range(6):
            start = time.monotonic()
            await c.send(b"USER ann\r\nPASS bad\r\n")
            await c.line()
            assert await c.line() == b"-ERR [AUTH] invalid credentials\r\n"
            took.append(time.monotonic() - start)
        assert min(took) >= 0.1  # never answered before the delay
        assert took[-1] >= 0.2  # the 5th failure and later wait twice as long


async def test_pop3_preauth_timeout(make_server: Any) -> None:
    async with serve(make_server, "pop3", limits=limits(preauth_timeout=0.5)) as s:
        c = await pop3(s)
        assert await c.line() == b"-ERR [SYS/TEMP] autologout; idle for too long\r\n"
        await c.closed()


async def test_pop3_idle_timeout_after_login(make_server: Any) -> None:
    async with serve(make_server, "pop3", limits=limits(pop3_idle_timeout=0.5)) as s:
        c = await pop3(s, login=True)
        assert await c.line() == b"-ERR [SYS/TEMP] autologout; idle for too long\r\n"
        await c.closed()
        assert await s.store.open("ann")  # nothing was expunged by the autologout


async def test_pop3_bad_command_budget(make_server: Any) -> None:
    async with serve(make_server, "pop3", limits=limits(bad_commands=3)) as s:
        c = await pop3(s)
        await c.send(b"FOO\r\nBAR\r\nBAZ\r\nCAPA\r\n")
        assert (await c.line()).startswith(b"-ERR unknown command")
        assert (await c.line()).startswith(b"-ERR unknown command")
        assert (await c.line()).endswith(b"too many bad commands, closing connection\r\n")
        await c.closed()


async def _max_buffered(server: MailServer, protocol: str, seconds: float) -> int:
    """The largest write buffer of any ``protocol`` connection, sampled for ``seconds``."""
    biggest = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for transport in _transports():
            with contextlib.suppress(Exception):
                biggest = max(biggest, transport.get_write_buffer_size())
        await asyncio.sleep(0.02)
    return biggest


def _transports() -> list[asyncio.WriteTransport]:
    """The server-side transports of live connections (found through their stream writers)."""
    clients = {id(c.writer) for c in OPEN}
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.StreamWriter) and id(obj) not in clients:
            transport = obj.transport
            if not transport.is_closing():
                found.append(transport)
    return found


BIG = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 200  # about 200 kB


async def test_pop3_client_that_never_reads_pipelined_retr_is_bounded(make_server: Any) -> None:
    lim = limits(output_buffer=1024 * 1024, pop3_idle_timeout=0.5)
    async with serve(make_server, "pop3", limits=lim) as s:
        await s.store.deliver("ann", BIG)
        c = await pop3(s, login=True)
        c.writer.transport.set_write_buffer_limits(high=0)
        await c.send(b"RETR 2\r\n" * 300)  # and never read
        biggest = await _max_buffered(s, "pop3", 1.5)
        assert biggest <= lim.output_buffer + 2 * len(BIG), biggest


# -- IMAP ---------------------------------------------------------------------------------------


async def imap(server: MailServer, login: bool = False) -> Conn:
    c = await Conn.open(server.ports.imap)  # type: ignore[arg-type]
    assert (await c.line()).startswith(b"* OK")
    if login:
        await c.send(b"L LOGIN ann pw\r\n")
        assert (await c.until(b"L "))[-1].startswith(b"L OK")
    return c


async def test_imap_line_length(make_server: Any) -> None:
    async with serve(make_server, "imap", limits=limits(imap_line=1000)) as s:
        c = await imap(s)
        await c.send(b"a LOGIN " + b"x" * 2000 + b" y\r\nb NOOP\r\n")
        assert await c.line() == b"a BAD Command line too long\r\n"
        assert (await c.line()).startswith(b"b OK")


async def test_imap_append_limit(make_server: Any) -> None:
    async with serve(make_server, "imap", limits=limits(message_size=2000)) as s:
        c = await imap(s, login=True)
        await c.send(b"c CAPABILITY\r\n")
        assert b" APPENDLIMIT=2000" in b"".join(await c.until(b"c "))
        await c.send(b"a APPEND INBOX {5000}\r\n")
        assert (await c.line()).startswith(b"a NO [TOOBIG]")  # no "+": nothing was sent
        await c.send(b"b APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\nn NOOP\r\n")
        assert (await c.line()).startswith(b"b NO [TOOBIG]")
        assert (await c.until(b"n "))[-1].startswith(b"n OK")  # the literal was swallowed
        await c.send(b"d APPEND INBOX {1000+}\r\n" + b"y" * 1000 + b"\r\n")
        assert (await c.until(b"d "))[-1].startswith(b"d OK")


async def test_imap_other_literals_are_limited(make_server: Any) -> None:
    async with serve(make_server, "imap", limits=limits(message_size=2000)) as s:
        c = await imap(s)
        await c.send(b"a LOGIN {3000}\r\n")
        assert await c.line() == b"a BAD Literal too large\r\n"
        await c.send(b"b NOOP\r\n")
        assert (await c.line()).startswith(b"b OK")


async def test_imap_connections_per_address(make_server: Any) -> None:
    async with serve(make_server, "imap", dev=False, limits=limits(connections_per_ip=2)) as s:
        await imap(s)
        await imap(s)
        third = await Conn.open(s.ports.imap)  # type: ignore[arg-type]
        assert await third.line() == b"* BYE [UNAVAILABLE] too many connections\r\n"
        await third.closed()


async def test_imap_connections_in_total(make_server: Any) -> None:
    async with serve(make_server, "imap", limits=limits(connections_total=2)) as s:
        await imap(s)
        await imap(s)
        third = await Conn.open(s.ports.imap)  # type: ignore[arg-type]
        assert await third.line() == b"* BYE [UNAVAILABLE] too many connections\r\n"
        await third.closed()


async def test_imap_failed_logins_per_connection(make_server: Any) -> None:
    lim = limits(auth_failures_per_connection=2)
    async with serve(make_server, "imap", dev=False, limits=lim) as s:
        c = await imap(s)
        await c.send(b"a LOGIN ann bad\r\nb LOGIN ann bad\r\n")
        assert await c.line() == b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        assert await c.line() == b"b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        assert await c.line() == b"* BYE Too many failed logins\r\n"
        await c.closed()


async def test_imap_failed_logins_per_address_block(make_server: Any) -> None:
    lim = limits(auth_failures_per_ip=2, auth_block_seconds=60, auth_failures_per_connection=10)
    async with serve(make_server, "imap", dev=False, limits=lim) as s:
        c = await imap(s)
        await c.send(b"a LOGIN ann bad\r\nb LOGIN ann bad\r\nc LOGIN ann pw\r\n")
        assert (await c.line()).startswith(b"a NO [AUTHENTICATIONFAILED]")
        assert (await c.line()).startswith(b"b NO [AUTHENTICATIONFAILED]")
        assert (await c.line()).startswith(b"c NO [UNAVAILABLE] Too many failed logins")


async def test_imap_preauth_timeout(make_server: Any) -> None:
    async with serve(make_server, "imap", limits=limits(preauth_timeout=0.5)) as s:
        c = await imap(s)
        assert await c.line() == b"* BYE Autologout; idle for too long\r\n"
        await c.closed()


async def test_imap_idle_timeout_after_login(make_server: Any) -> None:
    async with serve(make_server, "imap", limits=limits(imap_idle_timeout=0.5)) as s:
        c = await imap(s, login=True)
        assert await c.line() == b"* BYE Autologout; idle for too long\r\n"
        await c.closed()


async def test_imap_bad_command_budget(make_server: Any) -> None:
    async with serve(make_server, "imap", limits=limits(bad_commands=3)) as s:
        c = await imap(s)
        await c.send(b"a FOO\r\nb BAR\r\nc BAZ\r\nd NOOP\r\n")
        assert (await c.line()).startswith(b"a BAD")
        assert (await c.line()).startswith(b"b BAD")
        assert (await c.line()).startswith(b"c BAD")
        assert await c.line() == b"* BYE Too many invalid commands\r\n"
        await c.closed()


async def test_imap_client_that_never_reads_a_huge_fetch_is_bounded(make_server: Any) -> None:
    lim = limits(output_buffer=512 * 1024, imap_idle_timeout=0.5)
    async with serve(make_server, "imap", limits=lim) as s:
        for _ in range(40):
            await s.store.deliver("ann", BIG)
        c = await imap(s, login=True)
        await c.send(b"s SELECT INBOX\r\n")
        await c.until(b"s ")
        await c.send(b"f FETCH 1:* BODY.PEEK[]\r\n" * 5)  # 40 MB asked for, never read
        biggest = await _max_buffered(s, "imap", 1.5)
        assert biggest <= lim.output_buffer + 2 * len(BIG), biggest
        # And the session gave up on the client rather than wait for it forever.
        assert not [x for x in s.context.sessions.live.values() if x.protocol == "imap"]


# -- SMTP ---------------------------------------------------------------------------------------


async def smtp(server: MailServer, port: int | None = None) -> Conn:
    c = await Conn.open(port or server.ports.smtp)  # type: ignore[arg-type]
    assert (await c.line()).startswith(b"220 ")
    return c


async def test_smtp_size_limit(make_server: Any) -> None:
    async with serve(make_server, "smtp", limits=limits(message_size=2000)) as s:
        c = await smtp(s)
        await c.send(b"EHLO me\r\n")
        assert b"250-SIZE 2000\r\n" in b"".join(await c.until(b"250 "))
        await c.send(b"MAIL FROM:<a@example.org> SIZE=5000\r\n")
        assert (await c.line()).startswith(b"552 ")
        await c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<ann@localhost>\r\nDATA\r\n")
        assert (await c.line()).startswith(b"250")
        assert (await c.line()).startswith(b"250")
        assert (await c.line()).startswith(b"354")
        await c.send(b"Subject: x\r\n\r\n" + b"y" * 5000 + b"\r\n.\r\n")
        assert (await c.line()).startswith(b"552 ")
        await c.send(b"NOOP\r\n")
        assert (await c.line()).startswith(b"250")  # the session goes on


async def test_smtp_command_line_length(make_server: Any) -> None:
    async with serve(make_server, "smtp") as s:
        c = await smtp(s)
        await c.send(b"HELO " + b"x" * 2000 + b"\r\nNOOP\r\n")
        assert (await c.line()).startswith(b"500 ")
        assert (await c.line()).startswith(b"250")


async def test_smtp_connections_per_address(make_server: Any) -> None:
    async with serve(make_server, "smtp", dev=False, limits=limits(connections_per_ip=2)) as s:
        await smtp(s)
        await smtp(s)
        third = await Conn.open(s.ports.smtp)  # type: ignore[arg-type]
        assert (await third.line()).startswith(b"421 ")
        await third.closed()


async def test_smtp_connections_in_total(make_server: Any) -> None:
    async with serve(make_server, "smtp", limits=limits(connections_total=2)) as s:
        await smtp(s)
        await smtp(s)
        third = await Conn.open(s.ports.smtp)  # type: ignore[arg-type]
        assert (await third.line()).startswith(b"421 ")
        await third.closed()


PLAIN_BAD = b"AUTH PLAIN AGFubgBiYWQ=\r\n"  # \0ann\0bad
PLAIN_GOOD = b"AUTH PLAIN AGFubgBwdw==\r\n"  # \0ann\0pw


async def test_smtp_failed_logins_per_connection(make_server: Any) -> None:
    lim = limits(auth_failures_per_connection=2)
    async with serve(make_server, "smtp", dev=False, limits=lim) as s:
        c = await smtp(s, s.ports.submission)
        await c.send(b"EHLO me\r\n")
        await c.until(b"250 ")
        await c.send(PLAIN_BAD)
        assert (await c.line()).startswith(b"535 ")
        await c.send(PLAIN_BAD)
        assert (await c.line()).startswith(b"421 ")
        await c.closed()


async def test_smtp_failed_logins_per_address_block(make_server: Any) -> None:
    lim = limits(auth_failures_per_ip=2, auth_block_seconds=60, auth_failures_per_connection=10)
    async with serve(make_server, "smtp", dev=False, limits=lim) as s:
        c = await smtp(s, s.ports.submission)
        await c.send(b"EHLO me\r\n")
        await c.until(b"250 ")
        for _ in range(2):
            await c.send(PLAIN_BAD)
            assert (await c.line()).startswith(b"535 ")
        await c.send(PLAIN_GOOD)
        assert (await c.line()).startswith(b"454 ")


async def test_smtp_too_many_recipients(make_server: Any) -> None:
    async with serve(make_server, "smtp") as s:
        c = await smtp(s)
        await c.send(b"EHLO me\r\nMAIL FROM:<a@example.org>\r\n")
        await c.until(b"250 ")
        assert (await c.line()).startswith(b"250")
        await c.send(b"RCPT TO:<ann@localhost>\r\n" * 1001)
        for _ in range(1000):
            assert (await c.line()).startswith(b"250")
        assert (await c.line()).startswith(b"452 ")


async def test_smtp_idle_timeout(make_server: Any) -> None:
    async with serve(make_server, "smtp", limits=limits(smtp_timeout=0.5)) as s:
        c = await smtp(s)
        assert (await c.line(timeout=3)).startswith(b"421 ")
        await c.closed()


GREETING = {"pop3": b"-ERR [SYS/TEMP]", "imap": b"* BYE [UNAVAILABLE]", "smtp": b"421 "}


@pytest.mark.parametrize(
    "service",
    ["pop3", "imap", "smtp"],
)
async def test_connection_refusal_is_logged(
    make_server: Any, caplog: pytest.LogCaptureFixture, service: str
) -> None:
    caplog.set_level(logging.INFO, logger="mailsrv")
    async with serve(make_server, service, limits=limits(connections_total=1)) as s:
        port = {"pop3": s.ports.pop3, "imap": s.ports.imap, "smtp": s.ports.smtp}[service]
        first = await Conn.open(port)  # type: ignore[arg-type]
        await first.line()
        refused = await Conn.open(port)  # type: ignore[arg-type]
        assert (await refused.line()).startswith(GREETING[service])
        await refused.closed()
    messages = [r.getMessage().lower() for r in caplog.records if r.name.startswith("mailsrv")]
    assert any("too many connections" in m for m in messages), messages
