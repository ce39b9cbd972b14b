"""OBJECTID (RFC 8474) on the Maildir store with imaplib: MAILBOXID and EMAILID are the same
from a second server on the same root (a restart, or another process), and RENAME keeps the
MAILBOXID."""

from __future__ import annotations

import asyncio
import imaplib
import re
import time
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

MSG = b"From: a@example.org\r\nSubject: ids\r\n\r\nbody\r\n"


def ids(port: int, folder: str) -> tuple[bytes, list[bytes]]:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("alice", "pw")
    typ, data = c.status(folder, "(MAILBOXID)")
    assert typ == "OK", data
    m = re.search(rb"MAILBOXID \((F[0-9a-f]{32})\)", data[0])
    assert m is not None, data
    c.select(folder)
    typ, data = c.fetch("1:*", "(EMAILID)")
    c.logout()
    return m.group(1), [re.search(rb"EMAILID \((\w+)\)", d).group(1) for d in data]  # type: ignore[union-attr]


def rename(port: int, old: str, new: str) -> None:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("alice", "pw")
    assert c.rename(old, new)[0] == "OK"
    c.logout()


async def test_ids_survive_restart_and_rename(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("alice")
        await server.store.create_folder("alice", "Work")
        await server.store.deliver("alice", MSG, folder="Work")
        await server.store.deliver("alice", MSG, folder="Work")
        first = await asyncio.to_thread(ids, server.ports.imap, "Work")
        assert len(set(first[1])) == 2
    async with make_server(services={"imap"}) as again:
        assert await asyncio.to_thread(ids, again.ports.imap, "Work") == first
        await asyncio.to_thread(rename, again.ports.imap, "Work", "Play")
        assert await asyncio.to_thread(ids, again.ports.imap, "Play") == first


def savedate(port: int, *, flag: bool = False) -> bytes:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("alice", "pw")
    c.select("Work")
    if flag:
        c.store("1", "+FLAGS", "(\\Seen)")
    typ, data = c.fetch("1", "(SAVEDATE)")
    c.logout()
    assert typ == "OK"
    return data[0]


async def test_savedate_is_the_files_ctime_and_stays_after_flag_changes(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("alice")
        await server.store.create_folder("alice", "Work")
        await server.store.deliver("alice", MSG, folder="Work", internal_date=946684800.0)
        files = list((server.config.maildir / "alice" / ".Work").glob("*/*"))
        files = [f for f in files if f.parent.name in ("new", "cur")]
        ctime = files[0].stat().st_ctime
        first = await asyncio.to_thread(savedate, server.ports.imap)
        stamp = time.strftime("%d-%b-%Y %H:%M:%S", time.localtime(ctime)).lstrip("0")
        assert stamp.encode() in first, first
        await asyncio.sleep(1.1)  # a later rename would show a later ctime
        assert await asyncio.to_thread(savedate, server.ports.imap, flag=True) == first
    async with make_server(services={"imap"}) as again:  # from the cache, in a new process
        assert await asyncio.to_thread(savedate, again.ports.imap) == first
