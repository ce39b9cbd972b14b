"""CONDSTORE and QRESYNC (RFC 7162) through the IMAP core and session, on both stores."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsrv.imap import condstore
from mailsrv.imap.commands import Fetch, InvalidCommand, Select, StoreCommand
from mailsrv.imap.mailbox_view import MailboxView
from mailsrv.imap.parser import parse_command
from mailsrv.store.base import FlagMode, Store
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context


@pytest.fixture(params=["memory", "maildir"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else MaildirStore(tmp_path / "mail")
    await s.ensure_user("ann")
    for _ in range(4):
        await s.deliver("ann", MESSAGE)
    try:
        yield s
    finally:
        await s.close()


async def _talker(store: Store, *enable: str) -> Talker:
    t = Talker(make_context(store))  # type: ignore[arg-type]  # any Store will do
    await t.login()
    if enable:
        assert b"e OK" in await t.talk(b"e ENABLE " + " ".join(enable).encode() + b"\r\n")
    return t


def _number(pattern: bytes, data: bytes) -> int:
    m = re.search(pattern, data)
    assert m is not None, data
    return int(m.group(1))


def _modseqs(data: bytes) -> dict[int, int]:
    """UID -> MODSEQ of the FETCH responses in ``data``."""
    found = re.findall(rb"UID (\d+)[^\r\n]*MODSEQ \((\d+)\)", data)
    return {int(u): int(m) for u, m in found}


# -- grammar --------------------------------------------------------------------------------


def test_parse_condstore_arguments() -> None:
    sel = parse_command(
        b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"
    )
    assert isinstance(sel, Select) and sel.qresync is not None
    assert (sel.qresync.uidvalidity, sel.qresync.modseq) == (67890007, 20050715194045000)
    assert str(sel.qresync.known_uids) == "41,43:211,214:541"
    sel = parse_command(b"a EXAMINE x (QRESYNC (1 2 1:9 (1:3 4,7:8)) CONDSTORE)\r\n")
    assert isinstance(sel, Select) and sel.readonly and sel.condstore
    assert sel.qresync is not None and sel.qresync.seq_match is not None
    fetch = parse_command(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
    assert isinstance(fetch, Fetch) and fetch.changedsince == 12345 and fetch.vanished
    store = parse_command(b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Seen)\r\n")
    assert isinstance(store, StoreCommand) and store.unchangedsince == 0 and store.silent


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"a FETCH 1 FLAGS (CHANGEDSINCE 0)", b"CHANGEDSINCE: mod-sequence out of range"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE -1)", b"CHANGEDSINCE: invalid mod-sequence"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", b"out of range"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE)", b"unknown or repeated FETCH modifier"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)", b"only allowed with UID FETCH"),
        (b"a UID FETCH 1 FLAGS (VANISHED)", b"VANISHED needs CHANGEDSINCE"),
        (b"a STORE 1 (UNCHANGEDSINCE x) FLAGS ()", b"UNCHANGEDSINCE: invalid mod-sequence"),
        (b"a STORE 1 (UNCHANGED 5) FLAGS ()", b"(UNCHANGEDSINCE mod-sequence)"),
        (b"a SELECT x (QRESYNC (0 5))", b"invalid UIDVALIDITY"),
        (b"a SELECT x (QRESYNC (1 x))", b"QRESYNC: invalid mod-sequence"),
        (b"a SELECT x (QRESYNC (1 5 1:*))", b"only numbers"),
        (b"a SELECT x (QRESYNC (1 5 1:9 (1:2 3)))", b"differ in length"),
        (b"a SELECT x (QRESYNC)", b"unknown SELECT parameter QRESYNC"),
        (b"a SELECT x (FOO)", b"unknown SELECT parameter FOO"),
        (b"a SEARCH MODSEQ x", b"expected a number"),
    ],
)
async def test_bad_numbers_get_bad_with_the_reason(line: bytes, reason: bytes) -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    await store.deliver("ann", MESSAGE)
    t = await _talker(store)
    if not line.startswith(b"a SELECT"):
        await t.select()
    reply = await t.talk(line + b"\r\n")
    assert reply.startswith(b"a BAD ") and reason in reply, reply
    assert b"n OK" in await t.talk(b"n NOOP\r\n")  # the session goes on


def test_parse_select_without_parameters_is_unchanged() -> None:
    sel = parse_command(b"a SELECT INBOX\r\n")
    assert isinstance(sel, Select) and not sel.condstore and sel.qresync is None
    assert isinstance(parse_command(b"a SELECT INBOX ()\r\n"), Select)
    assert isinstance(parse_command(b"a SELECT INBOX (QRESYNC (1))\r\n"), InvalidCommand)


# -- CONDSTORE ------------------------------------------------------------------------------


async def test_fetch_modseq_enables_condstore(store: Store) -> None:
    t = await _talker(store)
    select = await t.select()
    assert b"HIGHESTMODSEQ" not in select  # not enabled yet
    reply = await t.talk(b"f FETCH 1:* (UID MODSEQ)\r\n")
    highest = _number(rb"\* OK \[HIGHESTMODSEQ (\d+)\]", reply)
    seqs = _modseqs(reply)
    assert sorted(seqs) == [1, 2, 3, 4] and max(seqs.values()) == highest
    stored = await t.talk(b"s STORE 2 +FLAGS (\\Seen)\r\n")
    assert re.search(rb"\* 2 FETCH \(FLAGS \(\\Seen \\Recent\) MODSEQ \((\d+)\)\)", stored)
    new = _number(rb"MODSEQ \((\d+)\)", stored)
    assert new > highest
    status = await t.talk(b"st STATUS INBOX (HIGHESTMODSEQ)\r\n")
    assert b"(HIGHESTMODSEQ %d)" % new in status
    changed = await t.talk(b"c FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n" % highest)
    assert changed == (
        b"* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (%d))\r\nc OK Fetch completed.\r\n" % new
    )
    assert await t.talk(b"m SEARCH MODSEQ %d\r\n" % new) == (
        b"* SEARCH 2 (MODSEQ %d)\r\nm OK Search completed.\r\n" % new
    )
    assert await t.talk(b'm SEARCH MODSEQ "/flags/\\\\seen" all %d\r\n' % (new + 1)) == (
        b"* SEARCH\r\nm OK Search completed.\r\n"
    )
    reply = await t.talk(b"e SEARCH RETURN (MIN COUNT) MODSEQ 1\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "e") MIN 1 COUNT 4 MODSEQ %d\r\n' % new)


async def test_select_condstore_and_unsolicited_modseq(store: Store) -> None:
    t = await _talker(store)
    reply = await t.talk(b"s SELECT INBOX (CONDSTORE)\r\n")
    highest = _number(rb"\* OK \[HIGHESTMODSEQ (\d+)\]", reply)
    other = await _talker(store)
    await other.select()
    assert b"x OK" in await other.talk(b"x STORE 3 +FLAGS (\\Flagged)\r\n")
    reply = await t.talk(b"n NOOP\r\n")
    value = _number(rb"\* 3 FETCH \(FLAGS \(\\Flagged \\Recent\) MODSEQ \((\d+)\)\)", reply)
    assert value > highest


async def test_conditional_store(store: Store) -> None:
    t = await _talker(store, "CONDSTORE")
    highest = _number(rb"HIGHESTMODSEQ (\d+)", await t.select())
    first = await t.talk(b"a STORE 1 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)\r\n" % highest)
    value = _number(rb"\* 1 FETCH \(MODSEQ \((\d+)\)\)\r\na OK Store completed", first)
    # Message 1 changed after ``highest``: refused, the others stored.
    reply = await t.talk(b"b STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)\r\n" % highest)
    assert reply.endswith(b"b OK [MODIFIED 1] Conditional STORE failed\r\n"), reply
    assert b"* 1 FETCH" not in reply and b"* 2 FETCH" in reply and b"* 3 FETCH" in reply
    reply = await t.talk(b"c UID STORE 1:4 (UNCHANGEDSINCE 0) FLAGS ()\r\n")
    assert reply == b"c OK [MODIFIED 1:4] Conditional STORE failed\r\n"
    reply = await t.talk(b"d FETCH 1 (MODSEQ)\r\n")
    assert reply.startswith(b"* 1 FETCH (MODSEQ (%d))" % value)


# -- QRESYNC --------------------------------------------------------------------------------


async def test_qresync_resync_after_changes_elsewhere(store: Store) -> None:
    t = await _talker(store, "QRESYNC")
    reply = await t.select()
    uidvalidity = _number(rb"UIDVALIDITY (\d+)", reply)
    highest = _number(rb"HIGHESTMODSEQ (\d+)", reply)
    assert b"u OK" in await t.talk(b"u UNSELECT\r\n")
    other = await _talker(store)
    await other.select()
    await other.talk(b"a STORE 2 +FLAGS (\\Answered)\r\n")
    await other.talk(b"b STORE 1,3 +FLAGS (\\Deleted)\r\n")
    assert b"c OK" in await other.talk(b"c EXPUNGE\r\n")
    line = b"q SELECT INBOX (QRESYNC (%d %d 1:4))\r\n" % (uidvalidity, highest)
    reply = await t.talk(line)
    assert b"* VANISHED (EARLIER) 1,3\r\n" in reply
    assert re.search(rb"\* 1 FETCH \(UID 2 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)\r\nq OK", reply)
    assert b"* 1 EXPUNGE" not in reply
    # Known UIDs limit the answer; a stale UIDVALIDITY is a plain SELECT.
    reply = await t.talk(b"r SELECT INBOX (QRESYNC (%d %d 3:4))\r\n" % (uidvalidity, highest))
    assert b"* VANISHED (EARLIER) 3\r\n" in reply and b"FETCH" not in reply
    reply = await t.talk(b"w SELECT INBOX (QRESYNC (%d %d))\r\n" % (uidvalidity + 1, highest))
    assert b"VANISHED" not in reply and b"FETCH" not in reply and b"w OK" in reply
    reply = await t.talk(b"v UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n" % highest)
    assert reply.startswith(b"* VANISHED (EARLIER) 1,3\r\n* 1 FETCH (UID 2 FLAGS")


async def test_vanished_instead_of_expunge(store: Store) -> None:
    t = await _talker(store, "QRESYNC")
    await t.select()
    other = await _talker(store)
    await other.select()
    await other.talk(b"a STORE 2:3 +FLAGS (\\Deleted)\r\n")
    await other.talk(b"b EXPUNGE\r\n")
    reply = await t.talk(b"n NOOP\r\n")
    assert b"* VANISHED 2:3\r\n" in reply and b"EXPUNGE" not in reply
    await t.talk(b"s STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    reply = await t.talk(b"x UID EXPUNGE 1\r\n")
    highest = (await (await store.open("ann")).snapshot()).highestmodseq
    assert reply == b"* VANISHED 1\r\nx OK [HIGHESTMODSEQ %d] Expunge completed.\r\n" % highest
    assert b"3 EXISTS" not in await t.talk(b"n NOOP\r\n")


async def test_qresync_needs_enable(store: Store) -> None:
    t = await _talker(store)
    reply = await t.talk(b"q SELECT INBOX (QRESYNC (1 1))\r\n")
    assert reply == b"q BAD QRESYNC parameter without ENABLE QRESYNC\r\n"
    await t.select()
    reply = await t.talk(b"v UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n")
    assert reply == b"v BAD VANISHED needs ENABLE QRESYNC first\r\n"


async def test_qresync_select_fed_byte_by_byte(store: Store) -> None:
    t = await _talker(store, "QRESYNC")
    reply = await t.select()
    uidvalidity = _number(rb"UIDVALIDITY (\d+)", reply)
    line = b"q EXAMINE INBOX (QRESYNC (%d 1 1:10))\r\n" % uidvalidity
    out = b""
    for i in range(len(line)):
        out += await t.talk(line[i : i + 1])
    assert b"VANISHED" not in out  # nothing was expunged (UIDs past UIDNEXT never existed)
    assert len(_modseqs(out)) == 4 and out.endswith(b"q OK [READ-ONLY] Examine completed.\r\n")


async def test_qresync_after_our_files_were_deleted(tmp_path: Path) -> None:
    """The log made afresh starts above what the client saw; the expunges it forgot come back as
    every UID of the client's range that is missing now."""
    root = tmp_path / "mail"
    store = MaildirStore(root)
    await store.ensure_user("ann")
    for _ in range(4):
        await store.deliver("ann", MESSAGE)
    t = await _talker(store, "QRESYNC")
    reply = await t.select()
    uidvalidity, highest = (
        _number(rb"UIDVALIDITY (\d+)", reply),
        _number(rb"HIGHESTMODSEQ (\d+)", reply),
    )
    await t.talk(b"a STORE 2 +FLAGS.SILENT (\\Deleted)\r\nb EXPUNGE\r\n")
    await store.close()
    (root / "ann" / "mailsrv-modseq").unlink()
    store = MaildirStore(root)
    try:
        t = await _talker(store, "QRESYNC")
        line = b"q SELECT INBOX (QRESYNC (%d %d 1:4))\r\n" % (uidvalidity, highest)
        reply = await t.talk(line)
        assert _number(rb"HIGHESTMODSEQ (\d+)", reply) > highest
        assert b"* VANISHED (EARLIER) 2\r\n" in reply
        assert sorted(_modseqs(reply)) == [1, 3, 4]  # all may have changed: all are sent
    finally:
        await store.close()


async def test_expunge_after_the_snapshot_is_not_vanished_earlier(store: Store) -> None:
    """VANISHED (EARLIER) agrees with the EXISTS the client was given: a message expunged
    between the SELECT's snapshot and its VANISHED comes later, as a plain VANISHED."""
    t = await _talker(store, "QRESYNC")
    highest = _number(rb"HIGHESTMODSEQ (\d+)", await t.select())
    view = t.session.view
    assert isinstance(view, MailboxView)
    box = await store.open("ann")
    await box.store_flags([2], ["\\Deleted"], FlagMode.ADD)
    await box.expunge([2])
    assert await condstore.vanished_earlier(view, highest, [(1, 4)]) is None
    reply = await t.talk(b"n NOOP\r\n")
    assert b"* VANISHED 2\r\n" in reply


async def test_implicit_seen_goes_out_with_modseq(store: Store) -> None:
    t = await _talker(store, "CONDSTORE")
    highest = _number(rb"HIGHESTMODSEQ (\d+)", await t.select())
    reply = await t.talk(b"f FETCH 1 (BODY[TEXT])\r\n")
    value = _number(rb"MODSEQ \((\d+)\)", reply)
    assert value > highest and b"FLAGS (\\Seen" in reply
