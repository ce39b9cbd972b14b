"""OBJECTID (RFC 8474) in sessions: MAILBOXID in SELECT, CREATE and STATUS, kept by RENAME;
EMAILID and THREADID fetch items and search keys; the persona gate."""

from __future__ import annotations

import dataclasses
import re

from mailsrv.imap.commands import Fetch, FetchItem, Status
from mailsrv.imap.object_ids import email_id
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context
from tests.unit.test_imap_framing import feed_all_ways


async def _session(persona: str | None = None) -> tuple[Talker, MemoryStore]:
    store = MemoryStore()
    await store.ensure_user("ann")
    await store.deliver("ann", MESSAGE)
    await store.deliver("ann", MESSAGE)
    ctx = make_context(store)
    if persona is not None:
        ctx.config = dataclasses.replace(ctx.config, persona=persona)
    t = Talker(ctx)
    await t.login("ann")
    return t, store


def _id(pattern: bytes, reply: bytes) -> bytes:
    m = re.search(pattern, reply)
    assert m is not None, reply
    return m.group(1)


async def test_mailboxid_in_create_select_status_and_kept_by_rename() -> None:
    t, _ = await _session()
    created = _id(
        rb"c OK \[MAILBOXID \((F[0-9a-f]{32})\)\] Create completed",
        await t.talk(b"c CREATE Work\r\n"),
    )
    status = _id(
        rb"\* STATUS \"?Work\"? \(MESSAGES 0 MAILBOXID \((\S+)\)\)",
        await t.talk(b"s STATUS Work (MESSAGES MAILBOXID)\r\n"),
    )
    assert status == created
    assert b"r OK" in await t.talk(b"r RENAME Work Play\r\n")
    selected = _id(rb"\* OK \[MAILBOXID \((\S+)\)\]", await t.talk(b"x SELECT Play\r\n"))
    assert selected == created
    inbox = _id(rb"\* OK \[MAILBOXID \((\S+)\)\]", await t.talk(b"x SELECT INBOX\r\n"))
    assert inbox != created


async def test_emailid_threadid_fetch_and_search() -> None:
    t, store = await _session()
    await t.select()
    reply = await t.talk(b"f FETCH 1:2 (EMAILID THREADID)\r\n")
    ids = re.findall(rb"EMAILID \((M[0-9a-f]{24})\) THREADID NIL", reply)
    assert len(ids) == 2 and ids[0] != ids[1], reply
    snap = await (await store.open("ann")).snapshot()
    assert ids[0].decode() == email_id(snap.messages[0].key)
    assert b"* SEARCH 2\r\n" in await t.talk(b"s SEARCH EMAILID " + ids[1] + b"\r\n")
    assert b"* SEARCH\r\n" in await t.talk(b"s SEARCH THREADID T1\r\n")
    assert (await t.talk(b"s SEARCH EMAILID (x)\r\n")).startswith(b"s BAD ")
    again = await t.talk(b"f UID FETCH 1 (EMAILID)\r\n")
    assert ids[0] in again  # the same every time


async def test_persona_without_objectid() -> None:
    t, _ = await _session("gmail")
    await t.select()
    assert b"MAILBOXID" not in await t.talk(b"x SELECT INBOX\r\n")
    assert (await t.talk(b"f FETCH 1 (EMAILID)\r\n")).startswith(b"f BAD")
    assert (await t.talk(b"s STATUS INBOX (MAILBOXID)\r\n")).startswith(b"s BAD")
    assert (await t.talk(b"s SEARCH EMAILID M1\r\n")).startswith(b"s BAD")


def test_new_items_parse_whole_and_byte_by_byte() -> None:
    data = b"f UID FETCH 1:* (EMAILID THREADID SAVEDATE)\r\ns STATUS INBOX (MAILBOXID UIDNEXT)\r\n"
    for result in feed_all_ways(data):
        fetch, status = result[0], result[1]
        assert isinstance(fetch, Fetch) and fetch.uid
        assert fetch.items == tuple(FetchItem(n) for n in ("EMAILID", "THREADID", "SAVEDATE"))
        assert isinstance(status, Status) and status.items == ("MAILBOXID", "UIDNEXT")
