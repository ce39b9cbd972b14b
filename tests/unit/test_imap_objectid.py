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
    found = re.findall(rb"EMAILID \((M[0-9a-f]{24})\) THREADID \((T[0-9a-f]{24})\)", reply)
    assert len(found) == 2, reply
    (e1, t1), (e2, t2) = found
    assert e1 != e2  # two messages, even with one Message-ID
    assert t1 == t2  # ... which puts them in one thread
    snap = await (await store.open("ann")).snapshot()
    assert e1.decode() == email_id(snap.messages[0].key)  # a delivered message: its key
    assert b"* SEARCH 2\r\n" in await t.talk(b"s SEARCH EMAILID " + e2 + b"\r\n")
    assert b"* SEARCH 1 2\r\n" in await t.talk(b"s SEARCH THREADID " + t1 + b"\r\n")
    assert b"* SEARCH\r\n" in await t.talk(b"s SEARCH THREADID T1\r\n")
    assert b"* SEARCH\r\n" in await t.talk(b"s SEARCH THREADID " + e1 + b"\r\n")
    assert (await t.talk(b"s SEARCH EMAILID (x)\r\n")).startswith(b"s BAD ")
    again = await t.talk(b"f UID FETCH 1 (EMAILID THREADID ENVELOPE)\r\n")
    assert e1 in again and t1 in again  # the same every time, on the general path too


def _msg(n: int, *parents: int, subject: str = "talk") -> bytes:
    head = f"From: a@example.com\r\nSubject: {subject}\r\nMessage-ID: <{n}@example.com>\r\n"
    if parents:
        refs = " ".join(f"<{p}@example.com>" for p in parents)
        head += f"In-Reply-To: <{parents[-1]}@example.com>\r\nReferences: {refs}\r\n"
    return (head + "\r\nbody\r\n").encode()


async def _thread_ids(t: Talker, command: bytes = b"f FETCH 1:* (THREADID)\r\n") -> list[bytes]:
    reply = await t.talk(command)
    return re.findall(rb"THREADID \((T[0-9a-f]{24})\)", reply)


async def test_threadid_follows_references_and_never_changes() -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    for data in (_msg(1), _msg(2, 1), _msg(3, 1, 2), _msg(10, subject="other")):
        await store.deliver("ann", data)
    await store.deliver("ann", _msg(4, 2))  # a reply naming only its parent: same thread
    await store.deliver("ann", b"Subject: talk\r\n\r\nno Message-ID\r\n")
    t = Talker(make_context(store))
    await t.login("ann")
    await t.select()
    ids = await _thread_ids(t)
    assert len(ids) == 6
    assert ids[0] == ids[1] == ids[2] == ids[4]
    assert len({ids[0], ids[3], ids[5]}) == 3  # subject alone joins nothing
    # The first message goes; a message naming threads 1 and 10 arrives: nothing moves.
    assert b"OK" in await t.talk(b"s STORE 1 +FLAGS (\\Deleted)\r\ne EXPUNGE\r\n")
    await store.deliver("ann", _msg(5, 10, 3))
    assert b"* 6 EXISTS" in await t.talk(b"n NOOP\r\n")
    after = await _thread_ids(t)
    assert after[:5] == ids[1:] and after[5] == ids[3]  # it joins the first it names
    assert b"* SEARCH 1 2 4\r\n" in await t.talk(b"s SEARCH THREADID " + ids[0] + b"\r\n")


async def test_copy_and_move_keep_emailid_and_threadid() -> None:
    t, _ = await _session()
    assert b"c OK" in await t.talk(b"c CREATE Work\r\n")
    await t.select()
    before = await t.talk(b"f FETCH 1:2 (EMAILID THREADID)\r\n")
    pairs = re.findall(rb"EMAILID \((\w+)\) THREADID \((\w+)\)", before)
    assert b"OK" in await t.talk(b"c COPY 1 INBOX\r\nm MOVE 2 Work\r\n")
    inbox = re.findall(
        rb"EMAILID \((\w+)\) THREADID \((\w+)\)",
        await t.talk(b"f FETCH 1:* (EMAILID THREADID)\r\n"),
    )
    assert inbox == [pairs[0], pairs[0]]
    await t.talk(b"x SELECT Work\r\n")
    work = re.findall(
        rb"EMAILID \((\w+)\) THREADID \((\w+)\)", await t.talk(b"f FETCH 1 (EMAILID THREADID)\r\n")
    )
    assert work == [pairs[1]]
    assert b"* SEARCH 1\r\n" in await t.talk(b"s SEARCH EMAILID " + pairs[1][0] + b"\r\n")


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
