"""One connection layer (mailsrv.net), the same rules on POP3, IMAP and SMTP: admission at
connect, SASL decoding errors, injected faults, and plaintext pipelined after STLS/STARTTLS.
Each case is one table row per protocol, so a drift between protocols fails here."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from tests.e2e.netclient import Conn, close_all

pytestmark = pytest.mark.timeout(30)

PROTOCOLS = ["pop3", "imap", "smtp"]
SERVICES = {"pop3": {"pop3"}, "imap": {"imap"}, "smtp": {"smtp"}}


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


def limits(**kw: Any) -> Limits:
    return dataclasses.replace(Limits(auth_failure_delay=0.0), **kw)


def port_of(server: MailServer, protocol: str) -> int | None:
    return {"pop3": server.ports.pop3, "imap": server.ports.imap, "smtp": server.ports.smtp}[
        protocol
    ]


async def greeted(server: MailServer, protocol: str) -> Conn:
    """A connection past its greeting (and EHLO on SMTP)."""
    c = await Conn.open(port_of(server, protocol))
    first = await c.line()
    assert first.startswith({"pop3": b"+OK", "imap": b"* OK", "smtp": b"220"}[protocol]), first
    if protocol == "smtp":
        await c.send(b"EHLO me\r\n")
        await c.until(b"250 ")
    return c


# -- admission ----------------------------------------------------------------------------------

TOO_MANY = {
    "pop3": b"-ERR [SYS/TEMP] too many connections\r\n",
    "imap": b"* BYE [UNAVAILABLE] too many connections\r\n",
    "smtp": b"421 4.7.0 Too many connections; try again later\r\n",
}
BLOCKED = {
    "pop3": b"-ERR [AUTH] too many failed logins from your address; try again later\r\n",
    "imap": b"* BYE [UNAVAILABLE] too many failed logins from your address; try again later\r\n",
    "smtp": b"421 4.7.0 Too many failed logins from your address; try again later\r\n",
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_same_admission_when_full(make_server: Any, protocol: str) -> None:
    async with make_server(services=SERVICES[protocol], limits=limits(connections_total=1)) as s:
        await greeted(s, protocol)
        refused = await Conn.open(port_of(s, protocol))
        assert await refused.closed() == TOO_MANY[protocol]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_same_admission_for_a_blocked_peer(make_server: Any, protocol: str) -> None:
    lim = limits(auth_failures_per_ip=1, auth_block_seconds=60)
    async with make_server(services=SERVICES[protocol], dev=False, limits=lim) as s:
        await s.context.auth.record_failure("127.0.0.1")
        refused = await Conn.open(port_of(s, protocol))
        assert await refused.closed() == BLOCKED[protocol]
        assert not s.context.sessions.live


# -- SASL ---------------------------------------------------------------------------------------

AUTH = {"pop3": b"AUTH", "imap": b"a AUTHENTICATE", "smtp": b"AUTH"}
BAD_BASE64 = {
    "pop3": b"-ERR invalid base64 in SASL response\r\n",
    "imap": b"a BAD Invalid base64 data in AUTHENTICATE response\r\n",
    "smtp": b"501 5.5.2 Can't decode base64\r\n",
}
BAD_UTF8 = {
    "pop3": b"-ERR invalid UTF-8 in SASL response\r\n",
    "imap": b"a BAD Invalid UTF-8 in AUTHENTICATE response\r\n",
    "smtp": b"501 5.5.2 Credentials are not valid UTF-8\r\n",
}
CANCELLED = {
    "pop3": b"-ERR authentication cancelled\r\n",
    "imap": b"a BAD Authentication aborted\r\n",
    "smtp": b"501 5.7.0 Auth aborted\r\n",
}
NOT_UTF8_PLAIN = base64.b64encode(b"\0ann\0\xffpw")
NOT_UTF8_USER = base64.b64encode(b"\xc3(")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("exchange", "answer"),
    [
        ([b"PLAIN !!!"], BAD_BASE64),
        ([b"PLAIN", b"!!!"], BAD_BASE64),
        ([b"LOGIN", b"bm90 IGI2NA=="], BAD_BASE64),
        ([b"PLAIN " + NOT_UTF8_PLAIN], BAD_UTF8),
        ([b"PLAIN", NOT_UTF8_PLAIN], BAD_UTF8),
        ([b"LOGIN " + NOT_UTF8_USER], BAD_UTF8),
        ([b"LOGIN", b"*"], CANCELLED),
        ([b"PLAIN", b"*"], CANCELLED),
    ],
    ids=["ir-base64", "base64", "login-base64", "ir-utf8", "utf8", "login-utf8", "login-*", "*"],
)
async def test_same_sasl_decoding(
    make_server: Any, protocol: str, exchange: list[bytes], answer: dict[str, bytes]
) -> None:
    async with make_server(services=SERVICES[protocol]) as s:
        c = await greeted(s, protocol)
        first, *responses = exchange
        await c.send(AUTH[protocol] + b" " + first + b"\r\n")
        for response in responses:
            assert (await c.line()).startswith({"smtp": b"334 "}.get(protocol, b"+ "))
            await c.send(response + b"\r\n")
        assert await c.line() == answer[protocol]
        assert not s.context.auth.blocked("127.0.0.1")  # not counted as a failed login


# -- faults -------------------------------------------------------------------------------------

NOOP = {"pop3": b"CAPA", "imap": b"a NOOP", "smtp": b"NOOP"}
FAILED = {
    "pop3": b"-ERR [SYS/TEMP] injected failure\r\n",
    "imap": b"a NO [UNAVAILABLE] injected failure\r\n",
    "smtp": b"451 4.3.0 Injected failure\r\n",
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fault_fail_on_every_protocol(make_server: Any, protocol: str) -> None:
    async with make_server(services=SERVICES[protocol]) as s:
        c = await greeted(s, protocol)
        s.context.faults.fail(protocol, NOOP[protocol].split()[-1].decode())
        await c.send(NOOP[protocol] + b"\r\n")
        assert await c.line() == FAILED[protocol]
        await c.send(NOOP[protocol] + b"\r\n")  # times=1: the next one runs
        assert not (await c.line()).startswith(FAILED[protocol][:6])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fault_drop_on_every_protocol(make_server: Any, protocol: str) -> None:
    async with make_server(services=SERVICES[protocol]) as s:
        c = await greeted(s, protocol)
        s.context.faults.drop(protocol, NOOP[protocol].split()[-1].decode())
        await c.send(NOOP[protocol] + b"\r\n")
        assert await c.closed() == b""


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fault_delay_on_every_protocol(make_server: Any, protocol: str) -> None:
    async with make_server(services=SERVICES[protocol]) as s:
        c = await greeted(s, protocol)
        s.context.faults.delay(protocol, NOOP[protocol].split()[-1].decode(), 0.4)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await c.send(NOOP[protocol] + b"\r\n")
        line = await c.line()
        assert loop.time() - started >= 0.35
        assert not line.startswith(FAILED[protocol][:6]) and line


# -- plaintext pipelined after the TLS upgrade --------------------------------------------------

UPGRADE = {"pop3": b"STLS", "imap": b"a STARTTLS", "smtp": b"STARTTLS"}
UPGRADED = {"pop3": b"+OK", "imap": b"a OK", "smtp": b"220"}
#: Sent in the clear right after the upgrade command: it must never run.
SMUGGLED = {"pop3": b"USER ann\r\n", "imap": b"b LOGIN ann pw\r\n", "smtp": b"MAIL FROM:<x@y>\r\n"}


async def smuggle(s: MailServer, protocol: str, certs_dir: Path) -> Conn:
    """Upgrade, with plaintext sent while the server is still answering the upgrade command."""
    c = await greeted(s, protocol)
    s.context.faults.delay(protocol, UPGRADE[protocol].split()[-1].decode(), 0.4)
    await c.send(UPGRADE[protocol] + b"\r\n")
    await asyncio.sleep(0.15)  # the server is inside the command: this lands in its buffer
    await c.send(SMUGGLED[protocol])
    assert (await c.line()).startswith(UPGRADED[protocol])
    await c.start_tls(certs_dir)
    return c


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_plaintext_after_upgrade_is_not_run(
    make_server: Any, certs_dir: Path, protocol: str
) -> None:
    async with make_server(services=SERVICES[protocol]) as s:
        c = await smuggle(s, protocol, certs_dir)
        if protocol == "pop3":
            await c.send(b"PASS pw\r\n")
            assert await c.line() == b"-ERR send USER first\r\n"
        elif protocol == "imap":
            await c.send(b"c NOOP\r\nd SELECT INBOX\r\n")
            assert (await c.line()).startswith(b"c OK")
            assert (await c.line()).startswith(b"d BAD")
        else:
            await c.send(b"EHLO me\r\n")
            await c.until(b"250 ")
            await c.send(b"RCPT TO:<ann@localhost>\r\n")
            assert (await c.line()).startswith(b"503 ")
