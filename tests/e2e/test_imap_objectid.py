"""OBJECTID (RFC 8474) on the Maildir store with imaplib: MAILBOXID, EMAILID and THREADID are
the same from a second server on the same root (a restart, or another process), RENAME keeps
the MAILBOXID, COPY and MOVE keep EMAILID and THREADID, and SEARCH finds messages by them."""

from __future__ import annotations

import asyncio
import imaplib
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import serving

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


def _mail(n: int, *parents: int) -> bytes:
    head = f"From: a@example.org\r\nSubject: topic {n}\r\nMessage-ID: <{n}@example.org>\r\n"
    if parents:
        refs = " ".join(f"<{p}@example.org>" for p in parents)
        head += f"In-Reply-To: <{parents[-1]}@example.org>\r\nReferences: {refs}\r\n"
    return (head + "\r\nbody\r\n").encode()


def _object_ids(c: imaplib.IMAP4, folder: str) -> dict[int, tuple[bytes, bytes]]:
    """{uid: (EMAILID, THREADID)} of the folder's messages."""
    c.select(folder)
    typ, data = c.uid("FETCH", "1:*", "(EMAILID THREADID)")
    assert typ == "OK", data
    out = {}
    for line in data:
        assert isinstance(line, bytes)
        m = re.search(rb"UID (\d+) EMAILID \((M\w+)\) THREADID \((T\w+)\)", line)
        assert m is not None, line
        out[int(m.group(1))] = (m.group(2), m.group(3))
    return out


def _search(c: imaplib.IMAP4, key: str, value: bytes) -> list[int]:
    typ, data = c.uid("SEARCH", key, value.decode())
    assert typ == "OK", data
    return [int(u) for u in data[0].split()]


def copy_and_move(port: int) -> dict[str, dict[int, tuple[bytes, bytes]]]:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("alice", "pw")
    before = _object_ids(c, "INBOX")
    (e1, t1), (e2, t2), (e3, t3), (e4, t4) = (before[u] for u in (1, 2, 3, 4))
    assert t1 == t2 == t4 != t3  # 2 replies to 1, 4 to 2; 3 stands alone
    assert len({e1, e2, e3, e4}) == 4
    assert c.uid("COPY", "1", "Work")[0] == "OK"
    assert c.uid("COPY", "1", "INBOX")[0] == "OK"  # a copy in its own folder: a new UID
    assert c.uid("MOVE", "3", "Work")[0] == "OK"
    inbox = _object_ids(c, "INBOX")
    assert inbox == {1: (e1, t1), 2: (e2, t2), 4: (e4, t4), 5: (e1, t1)}
    assert _search(c, "EMAILID", e1) == [1, 5]
    assert _search(c, "THREADID", t1) == [1, 2, 4, 5]
    assert _search(c, "THREADID", t3) == []
    work = _object_ids(c, "Work")
    assert work == {1: (e1, t1), 2: (e3, t3)}
    assert _search(c, "EMAILID", e3) == [2]
    assert _search(c, "THREADID", t3) == [2]
    c.logout()
    return {"INBOX": inbox, "Work": work}


def both_folders(port: int) -> dict[str, dict[int, tuple[bytes, bytes]]]:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("alice", "pw")
    out = {folder: _object_ids(c, folder) for folder in ("INBOX", "Work")}
    c.logout()
    return out


async def test_copy_and_move_keep_emailid_and_threadid(make_server: Any, tmp_path: Path) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("alice")
        await server.store.create_folder("alice", "Work")
        for data in (_mail(1), _mail(2, 1), _mail(3), _mail(4, 2)):
            await server.store.deliver("alice", data)
        seen = await asyncio.to_thread(copy_and_move, server.ports.imap)
        # Another process on the same root, while this one runs: the same ids.
        args = ("--dev", "--ephemeral", "--no-http", "--certs", "certs")
        with serving(tmp_path, *args, "--maildir", str(server.config.maildir)) as (_, info):
            ports = info["ports"]
            assert isinstance(ports, dict)
            assert await asyncio.to_thread(both_folders, int(ports["imap"])) == seen
    async with make_server(services={"imap"}) as again:  # and after a restart
        assert await asyncio.to_thread(both_folders, again.ports.imap) == seen
