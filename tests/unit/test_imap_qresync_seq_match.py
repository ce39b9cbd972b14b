"""QRESYNC message sequence match data (RFC 7162 §3.2.5.2), bytes in and out. When the store
no longer knows the expunges since the client's mod-sequence (here: its mod-sequence log was
lost), VANISHED (EARLIER) lists every missing UID of the client's range; the client's
(sequence number, UID) pairs narrow it to the UIDs above the last pair that still matches, taken
in ascending order and stopping at the first that does not. The expected answers are Dovecot
2.3.19's for the same mailbox (UIDs 1-10, 2, 5 and 8 expunged; its expunge records rotated
out of its transaction log), case by case."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsrv.store.maildir import MaildirStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context

#: seq-match-data -> Dovecot's VANISHED (EARLIER) (b"" for none); the mailbox is now
#: seq 1-7 = UIDs 1,3,4,6,7,9,10.
CASES = {
    b"": b"2,5,8",
    b" (1,2 1,3)": b"5,8",  # both match: the client knows every expunge up to UID 3
    b" (1:3 1,3,4)": b"5,8",
    b" (2,3 3,4)": b"5,8",
    b" (1,6 1,9)": b"",  # up to UID 9: nothing left to tell
    b" (1,2,3 1,3,5)": b"5,8",  # the third pair is wrong: the walk stops after UID 3
    b" (1,2,20 1,3,4)": b"5,8",  # message 20 does not exist: the walk stops there
    b" (2 4)": b"2,5,8",  # the first pair is wrong: nothing known
    b" (1,2 2,3)": b"2,5,8",
    b" (3,1 4,1)": b"5,8",  # sets are read sorted, as Dovecot reads them: (1 1) (3 4)
    b" (1,2,3 1,4,3)": b"5,8",
}


def _number(pattern: bytes, data: bytes) -> int:
    m = re.search(pattern, data)
    assert m is not None, data
    return int(m.group(1))


async def _talker(store: MaildirStore) -> Talker:
    t = Talker(make_context(store))  # type: ignore[arg-type]  # any Store will do
    await t.login()
    assert b"e OK" in await t.talk(b"e ENABLE QRESYNC\r\n")
    return t


@pytest.fixture
async def forgetful(tmp_path: Path) -> AsyncIterator[tuple[MaildirStore, int]]:
    """A store whose log forgot the expunges of UIDs 2, 5 and 8; and the UIDVALIDITY."""
    root = tmp_path / "mail"
    store = MaildirStore(root)
    await store.ensure_user("ann")
    for _ in range(10):
        await store.deliver("ann", MESSAGE)
    t = await _talker(store)
    uidvalidity = _number(rb"UIDVALIDITY (\d+)", await t.select())
    await t.talk(b"a UID STORE 2,5,8 +FLAGS.SILENT (\\Deleted)\r\nb EXPUNGE\r\n")
    await store.close()
    (root / "ann" / "mailsrv-modseq").unlink()
    store = MaildirStore(root)
    try:
        yield store, uidvalidity
    finally:
        await store.close()


async def test_seq_match_narrows_vanished_as_dovecot_does(
    forgetful: tuple[MaildirStore, int],
) -> None:
    store, uidvalidity = forgetful
    t = await _talker(store)
    got = {}
    for match in CASES:
        line = b"q SELECT INBOX (QRESYNC (%d 1 1:10%s))\r\n" % (uidvalidity, match)
        reply = await t.talk(line)
        assert reply.endswith(b"q OK [READ-WRITE] Select completed.\r\n"), reply
        found = re.search(rb"\* VANISHED \(EARLIER\) (\S+)\r\n", reply)
        got[match] = found.group(1) if found else b""
    assert got == CASES


async def test_seq_match_without_known_uids_and_byte_by_byte(
    forgetful: tuple[MaildirStore, int],
) -> None:
    store, uidvalidity = forgetful
    t = await _talker(store)
    line = b"q EXAMINE INBOX (QRESYNC (%d 1 (1,2 1,3)))\r\n" % uidvalidity
    out = b""
    for i in range(len(line)):
        out += await t.talk(line[i : i + 1])
    assert b"* VANISHED (EARLIER) 5,8\r\n" in out
    reply = await t.talk(b"r SELECT INBOX (QRESYNC (%d 1 4:10 (1,2 1,3)))\r\n" % uidvalidity)
    assert b"* VANISHED (EARLIER) 5,8\r\n" in reply


async def test_inconsistent_lengths_are_bad_and_full_history_ignores_the_sample(
    tmp_path: Path,
) -> None:
    store = MaildirStore(tmp_path / "mail")
    await store.ensure_user("ann")
    for _ in range(4):
        await store.deliver("ann", MESSAGE)
    try:
        t = await _talker(store)
        reply = await t.select()
        uidvalidity = _number(rb"UIDVALIDITY (\d+)", reply)
        highest = _number(rb"HIGHESTMODSEQ (\d+)", reply)
        await t.talk(b"a UID STORE 2 +FLAGS.SILENT (\\Deleted)\r\nb EXPUNGE\r\n")
        bad = await t.talk(b"q SELECT INBOX (QRESYNC (%d 1 1:4 (1,2 1,3,4)))\r\n" % uidvalidity)
        assert bad == (
            b"q BAD Error in IMAP command SELECT: QRESYNC: the sequence match sets differ"
            b" in length\r\n"
        )
        # The log knows the expunge: it is reported, though the sample (which contradicts the
        # client's mod-sequence) would have hidden it.
        line = b"r SELECT INBOX (QRESYNC (%d %d 1:4 (1:3 1,3,4)))\r\n" % (uidvalidity, highest)
        assert b"* VANISHED (EARLIER) 2\r\n" in await t.talk(line)
    finally:
        await store.close()
