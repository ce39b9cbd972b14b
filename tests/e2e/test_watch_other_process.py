"""Another process's delivery reaches an IMAP IDLE client of a running server, with either
watcher (``watch = "inotify"`` and ``watch = "poll"``)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mailsrv.store import inotify
from mailsrv.store.inotify_watcher import InotifyWatcher
from mailsrv.store.poller import PollWatcher

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
MODES = [
    pytest.param(
        "inotify",
        marks=pytest.mark.skipif(not inotify.available(), reason="inotify is Linux's"),
    ),
    "poll",
]


class Idler:
    """A raw-socket IMAP client that logs in, selects INBOX and enters IDLE."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def start(cls, port: int, user: str) -> Idler:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        idler = cls(reader, writer)
        await idler.line()  # greeting
        await idler.command(b"a1", b'LOGIN "%s" "secret"' % user.encode())
        await idler.command(b"a2", b"SELECT INBOX")
        writer.write(b"a3 IDLE\r\n")
        assert (await idler.line()).startswith(b"+ ")
        return idler

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), TIMEOUT)

    async def command(self, tag: bytes, text: bytes) -> None:
        self.writer.write(tag + b" " + text + b"\r\n")
        while not (line := await self.line()).startswith(tag + b" "):
            assert line, "connection closed"
        assert line.startswith(tag + b" OK"), line

    async def wait_for(self, wanted: bytes) -> None:
        while (line := await self.line()) != wanted:
            assert line, "connection closed"

    async def finish(self) -> None:
        self.writer.write(b"DONE\r\n")
        while not (line := await self.line()).startswith(b"a3 "):
            assert line, "connection closed"
        await self.command(b"a4", b"LOGOUT")
        self.writer.close()
        await self.writer.wait_closed()


async def deliver_by_cli(maildir: Path, user: str) -> None:
    """``mailsrv deliver``, as a separate process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailsrv",
        "deliver",
        "--to",
        user,
        "--maildir",
        str(maildir),
        "-",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(b"Subject: hi\n\nfrom outside\n"), 60)
    assert proc.returncode == 0, err


def drop_into_new(maildir: Path, user: str) -> None:
    """What another MDA does: write the file in tmp/, then rename it into new/."""
    name = f"{int(time.time())}.M1P{os.getpid()}.elsewhere"
    tmp = maildir / user / "tmp" / name
    tmp.write_bytes(b"Subject: dropped\r\n\r\nby another program\r\n")
    tmp.rename(maildir / user / "new" / name)


@pytest.mark.parametrize("watch", MODES)
@pytest.mark.parametrize("how", ["cli", "raw"])
async def test_other_process_delivery_reaches_idler(
    make_server: Any, tmp_path: Path, watch: str, how: str
) -> None:
    async with make_server(services={"imap"}, watch=watch) as server:
        maildir = server.config.maildir
        kind = InotifyWatcher if watch == "inotify" else PollWatcher
        assert isinstance(server.store._watcher, kind), "the config's watch reaches the store"
        await server.store.ensure_user("alice")
        idler = await Idler.start(server.ports.imap, "alice")
        if how == "cli":
            await deliver_by_cli(maildir, "alice")
        else:
            await asyncio.to_thread(drop_into_new, maildir, "alice")
        await idler.wait_for(b"* 1 EXISTS\r\n")
        await idler.finish()
