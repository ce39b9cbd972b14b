"""Graceful shutdown on every protocol (mailsrv.net.shutdown): a session in the middle of a
command (IMAP APPEND literal, POP3 RETR, SMTP DATA) finishes it within the grace, then gets its
protocol's goodbye; one that never finishes is cut off with nothing half-written in the Maildir;
idle sessions get the goodbye at once. Every goodbye is traced."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from tests.conftest import server_config
from tests.e2e.netclient import Conn, close_all

pytestmark = pytest.mark.timeout(30)

MSG = b"From: a@example.org\r\nSubject: grace\r\n\r\n" + b"body line\r\n" * 50
BYE = {
    "imap": b"* BYE [UNAVAILABLE] Server shutting down\r\n",
    "pop3": b"-ERR [SYS/TEMP] server shutting down\r\n",
    "smtp": b"421 4.3.2 Service shutting down\r\n",
}


class Running:
    """A started server whose ``stop`` the test runs itself, in the middle of a command."""

    def __init__(self, server: MailServer) -> None:
        self.server = server
        self.stopping: asyncio.Task[None] | None = None

    def stop(self) -> asyncio.Task[None]:
        self.stopping = asyncio.create_task(self.server.stop())
        return self.stopping

    def maildir_files(self, user: str) -> dict[str, list[str]]:
        root: Path = self.server.config.maildir / user
        return {
            sub: sorted(p.name for p in (root / sub).iterdir()) if (root / sub).is_dir() else []
            for sub in ("tmp", "new", "cur")
        }


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


@pytest.fixture
async def running(tmp_path: Path, certs_dir: Path) -> AsyncIterator[Running]:
    limits = Limits(auth_failure_delay=0.0, shutdown_grace=3.0)
    config = server_config(tmp_path, certs_dir, services={"imap", "pop3", "smtp"}, limits=limits)
    server = MailServer(config)
    await server.start()
    await server.store.ensure_user("ann")
    await server.store.deliver("ann", MSG)
    run = Running(server)
    yield run
    if run.stopping is None:
        await server.stop()
    else:
        await run.stopping


def short_grace(run: Running, seconds: float) -> None:
    cfg = run.server.config
    limits = dataclasses.replace(cfg.limits, shutdown_grace=seconds)
    object.__setattr__(cfg, "limits", limits)  # the listeners read it when they close


async def imap_login(run: Running) -> Conn:
    c = await Conn.open(run.server.ports.imap)
    assert (await c.line()).startswith(b"* OK")
    await c.send(b"a LOGIN ann pw\r\n")
    await c.until(b"a OK")
    return c


async def test_imap_append_half_sent_then_finished_within_the_grace(running: Running) -> None:
    c = await imap_login(running)
    await c.send(b"b APPEND INBOX {%d}\r\n" % len(MSG))
    assert (await c.line()).startswith(b"+ ")
    await c.send(MSG[:40])
    await asyncio.sleep(0.2)
    stop = running.stop()
    await asyncio.sleep(0.3)
    assert not stop.done()
    await c.send(MSG[40:] + b"\r\n")
    assert (await c.line()).startswith(b"b OK [APPENDUID ")
    assert await c.line() == BYE["imap"]
    assert await c.closed() == b""
    await stop
    files = running.maildir_files("ann")
    assert len(files["new"]) + len(files["cur"]) == 2 and files["tmp"] == []
    traced = [t.text for t in running.server.context.tracer.lines if t.protocol == "imap"]
    assert BYE["imap"].decode().rstrip() in [x.rstrip() for x in traced]


async def test_imap_append_announced_but_not_begun_is_a_command_in_progress(
    running: Running,
) -> None:
    """The literal was announced and the ``+`` sent, but no byte of it came yet: the client is
    inside APPEND and may still finish it within the grace."""
    c = await imap_login(running)
    await c.send(b"b APPEND INBOX {%d}\r\n" % len(MSG))
    assert (await c.line()).startswith(b"+ ")
    await asyncio.sleep(0.2)
    stop = running.stop()
    await asyncio.sleep(0.3)
    assert not stop.done()
    await c.send(MSG + b"\r\n")
    assert (await c.line()).startswith(b"b OK [APPENDUID ")
    assert await c.line() == BYE["imap"]
    await stop


async def test_imap_append_never_finished_leaves_nothing(running: Running) -> None:
    short_grace(running, 0.5)
    c = await imap_login(running)
    before = running.maildir_files("ann")
    await c.send(b"b APPEND INBOX {%d}\r\n" % len(MSG))
    assert (await c.line()).startswith(b"+ ")
    await c.send(MSG[:40])
    await asyncio.sleep(0.2)
    await running.stop()
    assert b"b OK" not in await c.closed()
    assert running.maildir_files("ann") == before
    assert before["tmp"] == []


async def test_pop3_retr_in_progress_finishes_then_goodbye(running: Running) -> None:
    c = await Conn.open(running.server.ports.pop3)
    assert (await c.line()).startswith(b"+OK")
    await c.send(b"USER ann\r\nPASS pw\r\n")
    await c.until(b"+OK ann has")
    running.server.context.faults.delay("pop3", "RETR", 0.6)
    await c.send(b"RETR 1\r\n")
    await asyncio.sleep(0.2)
    stop = running.stop()
    lines = await c.until(b".\r\n")
    assert lines[0].startswith(b"+OK") and b"Subject: grace\r\n" in lines
    assert await c.line() == BYE["pop3"]
    assert await c.closed() == b""
    await stop
    files = running.maildir_files("ann")
    assert len(files["new"]) + len(files["cur"]) == 1  # QUIT never came: nothing expunged


async def test_smtp_data_in_progress_finishes_then_421(running: Running) -> None:
    c = await Conn.open(running.server.ports.smtp)
    assert (await c.line()).startswith(b"220")
    await c.send(b"EHLO me\r\n")
    await c.until(b"250 ")
    await c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<ann@localhost>\r\nDATA\r\n")
    assert (await c.line()).startswith(b"250")
    assert (await c.line()).startswith(b"250")
    assert (await c.line()).startswith(b"354")
    await c.send(MSG[:40])
    await asyncio.sleep(0.2)
    stop = running.stop()
    await asyncio.sleep(0.3)
    assert not stop.done()
    await c.send(MSG[40:] + b".\r\n")
    assert (await c.line()).startswith(b"250 2.0.0 OK: queued as")
    assert await c.line() == BYE["smtp"]
    assert await c.closed() == b""
    await stop
    files = running.maildir_files("ann")
    assert len(files["new"]) + len(files["cur"]) == 2 and files["tmp"] == []


async def test_smtp_data_never_finished_delivers_nothing(running: Running) -> None:
    short_grace(running, 0.5)
    c = await Conn.open(running.server.ports.smtp)
    assert (await c.line()).startswith(b"220")
    await c.send(b"HELO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<ann@localhost>\r\nDATA\r\n")
    await c.until(b"354")
    before = running.maildir_files("ann")
    await c.send(MSG[:40])
    await asyncio.sleep(0.2)
    await running.stop()
    assert (await c.closed()).startswith(b"421 ")
    assert running.maildir_files("ann") == before


async def test_idle_sessions_get_the_goodbye_at_once(running: Running) -> None:
    imap = await imap_login(running)
    pop3 = await Conn.open(running.server.ports.pop3)
    assert (await pop3.line()).startswith(b"+OK")
    smtp = await Conn.open(running.server.ports.smtp)
    assert (await smtp.line()).startswith(b"220")
    started = time.monotonic()
    await running.stop()
    assert time.monotonic() - started < 2.0  # the 3 s grace was not needed
    assert await imap.closed() == BYE["imap"]
    assert await pop3.closed() == BYE["pop3"]
    assert await smtp.closed() == BYE["smtp"]
    traced = {
        (t.protocol, t.direction, t.text.rstrip()) for t in running.server.context.tracer.lines
    }
    for protocol, line in BYE.items():
        assert (protocol, "S", line.decode().rstrip()) in traced
