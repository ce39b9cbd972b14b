"""SORT, THREAD, ESORT, PARTIAL and the live results of CONTEXT=SEARCH/SORT as transcripts over
the IMAP core and session (no sockets).

The answers on ``tests/data/sort/*.mbox`` are Dovecot 2.3's, recorded beside each mailbox in
``*.dovecot``; imaptest's own sort and thread groups run too when its checkout is beside ours.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from mailsrv.imap.search_context import MAX_LIVE_RESULTS
from mailsrv.imap.sort import AnswerMemo, SortItemTables, sort_item
from mailsrv.imap.sort_record import from_header
from mailsrv.store.base import INBOX
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.memory import MemoryMailbox, MemoryStore
from tests.unit.imap_harness import Talker, make_context
from tests.unit.sort_mbox import DATA, IMAPTEST, messages

_TAG = re.compile(rb'\(TAG "[^"]*"\)')


async def loaded(path: Path, store: MemoryStore | None = None) -> Talker:
    store = store or MemoryStore()
    await store.ensure_user("ann")
    for date, msg in messages(path):
        await store.deliver("ann", msg, internal_date=date)
    t = Talker(make_context(store))
    await t.login()
    await t.select()
    return t


def untagged(reply: bytes) -> bytes:
    return b"".join(line for line in reply.splitlines(keepends=True) if line.startswith(b"*"))


def recorded(path: Path) -> list[tuple[str, bytes]]:
    lines = path.read_text().splitlines()
    out: list[tuple[str, bytes]] = []
    for line in lines:
        if line.startswith("*"):
            command, answer = out[-1]
            out[-1] = (command, answer + line.encode() + b"\r\n")
        else:
            out.append((line, b""))
    return out


@pytest.mark.parametrize("name", ["mixed", "collation", "threads"])
async def test_answers_match_dovecot(name: str) -> None:
    t = await loaded(DATA / f"{name}.mbox")
    for command, answer in recorded(DATA / f"{name}.dovecot"):
        got = untagged(await t.talk(b"t " + command.encode() + b"\r\n"))
        assert _TAG.sub(b"(TAG)", got) == _TAG.sub(b"(TAG)", answer), command


def imaptest_groups() -> list[str]:
    if not IMAPTEST.is_dir():
        return []
    names = [p.name for p in IMAPTEST.iterdir() if not p.suffix]
    return sorted(n for n in names if n.startswith(("sort", "thread", "esort")))


@pytest.mark.skipif(not IMAPTEST.is_dir(), reason="imaptest's tests are not beside this checkout")
@pytest.mark.parametrize("group", imaptest_groups())
async def test_imaptest_group(group: str) -> None:
    script = (IMAPTEST / group).read_text()
    mbox = IMAPTEST / f"{group}.mbox"
    if not mbox.exists():
        mbox = IMAPTEST / "default.mbox"
    created = "state: created" in script  # the script appends the messages itself
    t = await loaded(mbox if not created else DATA / "empty.mbox")
    pending = messages(mbox) if created else []
    reply = b""
    for line in script.split("\n\n", 1)[1].splitlines():
        if line == "ok append":
            _, msg = pending.pop(0)
            await t.session.ctx.store.deliver("ann", msg)
            await t.talk(b"n NOOP\r\n")  # as if appended by this session: it knows at once
        elif line.startswith("ok "):
            command = line[3:].replace("$mailbox", "INBOX")
            reply = (await t.talk(b"t " + command.encode() + b"\r\n")).lower()
            assert reply.endswith(b"t ok sort completed.\r\n") or b"\r\nt ok " in b"\r\n" + reply
        elif line.startswith("bad "):
            reply = await t.talk(b"t " + line[4:].encode() + b"\r\n")
            assert b"t BAD " in reply, line
        elif line.startswith("* "):
            want = line.lower().replace("$tag", "t").replace(") (", ")(").encode()
            assert want.replace(b"(tag t)", b'(tag "t")') in reply.replace(b") (", b")("), line


async def test_sort_keys_and_errors() -> None:
    t = await loaded(DATA / "collation.mbox")
    assert await t.talk(b"a SORT (FOO) UTF-8 ALL\r\n") == b"a BAD unknown sort criterion FOO\r\n"
    reply = await t.talk(b"b SORT (DATE) KOI8-R ALL\r\n")
    assert reply.startswith(b"b NO [BADCHARSET (US-ASCII UTF-8)] ")
    assert (await t.talk(b"c THREAD FOO UTF-8 ALL\r\n")).startswith(b"c BAD ")
    assert (await t.talk(b"d SORT (DATE)\r\n")).startswith(b"d BAD ")
    assert (await t.talk(b"e SORT RETURN (PARTIAL 1:*) (DATE) UTF-8 ALL\r\n")).startswith(b"e BAD ")
    assert (await t.talk(b"f SORT RETURN (NOPE) (DATE) UTF-8 ALL\r\n")).startswith(b"f BAD ")
    assert (await t.talk(b"g SORT (DATE) UTF-8 NOSUCHKEY\r\n")).startswith(b"g BAD ")
    # The session goes on after each refusal.
    assert (await t.talk(b"h SORT (SIZE) US-ASCII 1:3\r\n")).startswith(b"* SORT ")


async def test_save_keeps_what_min_max_and_partial_return() -> None:
    _, t = await five()  # subjects m5 m4 m3 m2 m1: by subject 5 4 3 2 1
    reply = await t.talk(b"a SEARCH RETURN (PARTIAL 2:3 SAVE) ALL\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "a") PARTIAL (2:3 2:3)\r\n')
    assert b"* 2 FETCH (UID 2)\r\n* 3 FETCH (UID 3)\r\nb OK" in await t.talk(b"b FETCH $ UID\r\n")
    reply = await t.talk(b"c SORT RETURN (SAVE MIN) (SUBJECT) UTF-8 ALL\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "c") MIN 5\r\n')
    assert (await t.talk(b"d FETCH $ UID\r\n")).startswith(b"* 5 FETCH (UID 5)\r\nd OK")
    assert (await t.talk(b"e UID SORT RETURN (SAVE) (SUBJECT) UTF-8 2:4\r\n")).startswith(b"e OK")
    reply = await t.talk(b"f SEARCH $\r\n")
    assert reply.startswith(b"* SEARCH 2 3 4\r\n")
    reply = await t.talk(b"g SEARCH RETURN (SAVE UPDATE) 1\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "g")\r\n')
    assert (await t.talk(b"h SEARCH $\r\n")).startswith(b"* SEARCH 1\r\n")


async def test_sort_before_select_is_refused() -> None:
    store = MemoryStore()
    t = Talker(make_context(store))
    await t.login()
    assert (await t.talk(b"a SORT (DATE) UTF-8 ALL\r\n")).startswith(b"a BAD ")


async def test_records_come_from_the_cache_not_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    first = await loaded(DATA / "mixed.mbox", store)
    want = await first.talk(b"a THREAD REFERENCES UTF-8 ALL\r\n")

    async def no_reading(self: MemoryMailbox, uid: int) -> bytes:
        raise AssertionError("a message was read")

    monkeypatch.setattr(MemoryMailbox, "read_header", no_reading)
    monkeypatch.setattr(MemoryMailbox, "read", no_reading)
    second = Talker(make_context(store))
    # As after a restart: nothing in memory, only the folder's cache.
    second.session.shared.sort.items = SortItemTables()
    second.session.shared.sort.answers = AnswerMemo()
    await second.login()
    await second.select()
    assert await second.talk(b"a THREAD REFERENCES UTF-8 ALL\r\n") == want
    assert (await second.talk(b"b SORT (SUBJECT DATE) UTF-8 ALL\r\n")).startswith(b"* SORT ")


def test_sort_item_tables_keep_the_folders_used_last() -> None:
    tables = SortItemTables(limit=3)
    item = sort_item(1, 0.0, 10, from_header(b"Subject: x\r\n\r\n"))
    tables.table("ann", "A", 1).update({1: item, 2: item})
    tables.table("ann", "B", 1)[1] = item
    assert len(tables.table("ann", "A", 1)) == 2  # A is now the most recently used
    tables.table("ann", "C", 1)[1] = item  # over the limit at the next lookup: B goes first
    assert tables.table("ann", "C", 1) == {1: item}
    assert tables.table("ann", "B", 1) == {}
    assert tables.table("ann", "A", 7) == {}  # another UIDVALIDITY is another folder


def test_answer_memo_keeps_within_its_budget() -> None:
    memo = AnswerMemo(limit=100)
    memo.put(("a",), b"x", 60)
    memo.put(("b",), b"y", 30)
    assert memo.get(("a",)) == b"x" and memo.get(("b",)) == b"y"
    memo.put(("c",), b"z", 30)  # over budget: the oldest goes
    assert memo.get(("a",)) is None and memo.get(("c",)) == b"z"
    memo.put(("d",), b"too big", 101)  # never kept
    assert memo.get(("d",)) is None and memo.get(("b",)) == b"y"


async def test_maildir_cache_survives_a_restart(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    t = await loaded(DATA / "mixed.mbox", store)  # type: ignore[arg-type]
    want = await t.talk(b"a SORT (DISPLAYFROM) UTF-8 ALL\r\n")
    await store.close()
    again = MaildirStore(tmp_path)
    box = await again.open("ann", INBOX)
    uids = [m.uid for m in (await box.snapshot()).messages]
    assert all([await box.get_cached(u, "imap.sort.1") for u in uids])
    t2 = Talker(make_context(again))  # type: ignore[arg-type]
    await t2.login()
    await t2.select()
    assert await t2.talk(b"a SORT (DISPLAYFROM) UTF-8 ALL\r\n") == want
    await again.close()


# -- CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4) ----------------------------------------------


async def five() -> tuple[MemoryStore, Talker]:
    store = MemoryStore()
    await store.ensure_user("ann")
    for i in range(5):
        msg = f"Subject: m{5 - i}\r\nDate: Mon, {i + 1} Jan 2024 10:00:00 +0000\r\n\r\nbody {i}\r\n"
        await store.deliver("ann", msg.encode(), internal_date=1_700_000_000 + i)
    t = Talker(make_context(store))
    await t.login()
    await t.select()
    return store, t


async def test_search_update_transcript() -> None:
    _, t = await five()
    assert await t.talk(b"s SEARCH RETURN (UPDATE) BODY body SEEN\r\n") == (
        b'* ESEARCH (TAG "s")\r\ns OK Search completed.\r\n'
    )
    reply = await t.talk(b"a STORE 1,2,4 +FLAGS.SILENT (\\Seen)\r\n")
    assert reply == b'* ESEARCH (TAG "s") ADDTO (0 1:2,4)\r\na OK Store completed.\r\n'
    reply = await t.talk(b"b STORE 1,2 -FLAGS.SILENT (\\Seen)\r\n")
    assert reply == b'* ESEARCH (TAG "s") REMOVEFROM (0 1:2)\r\nb OK Store completed.\r\n'
    await t.talk(b"c STORE 3:5 +FLAGS.SILENT (\\Deleted)\r\n")
    reply = await t.talk(b"d EXPUNGE\r\n")
    assert reply == (
        b'* ESEARCH (TAG "s") REMOVEFROM (0 4)\r\n'
        b"* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 3 EXPUNGE\r\nd OK Expunge completed.\r\n"
    )
    reply = await t.talk(b"e APPEND INBOX (\\Seen) {14}\r\nSubject: x\r\n\r\n\r\n")
    assert b"* 3 EXISTS\r\n" in reply
    assert b'* ESEARCH (TAG "s") ADDTO (0 3)\r\n' not in reply  # "body" is not in it
    reply = await t.talk(b"f APPEND INBOX (\\Seen) {20}\r\nSubject: x\r\n\r\nbody\r\n\r\n")
    assert reply.index(b"* 4 EXISTS") < reply.index(b'* ESEARCH (TAG "s") ADDTO (0 4)\r\n')
    assert await t.talk(b'g CANCELUPDATE "s"\r\n') == b"g OK CancelUpdate completed.\r\n"
    assert await t.talk(b"h STORE 4 -FLAGS.SILENT (\\Seen)\r\n") == b"h OK Store completed.\r\n"
    assert (await t.talk(b'i CANCELUPDATE "s"\r\n')).startswith(b"i NO ")


async def test_uid_search_update_sees_another_session() -> None:
    store, t = await five()
    other = Talker(make_context(store))
    await other.login()
    await other.select()
    reply = await t.talk(b"s UID SEARCH RETURN (UPDATE ALL) SEEN\r\n")
    assert reply == b'* ESEARCH (TAG "s") UID\r\ns OK Search completed.\r\n'
    await other.talk(b"a STORE 2:3 +FLAGS.SILENT (\\Seen)\r\n")
    reply = await t.talk(b"n NOOP\r\n")
    assert b'* ESEARCH (TAG "s") UID ADDTO (0 2:3)\r\n' in reply
    await other.talk(b"b STORE 2 +FLAGS.SILENT (\\Deleted)\r\nc EXPUNGE\r\n")
    reply = await t.talk(b"n NOOP\r\n")
    assert reply.index(b'* ESEARCH (TAG "s") UID REMOVEFROM (0 2)') < reply.index(b"* 2 EXPUNGE")


async def test_live_results_during_idle() -> None:
    store, t = await five()
    other = Talker(make_context(store))
    await other.login()
    await other.select()
    await t.talk(b"s SEARCH RETURN (UPDATE) FLAGGED\r\n")
    assert await t.talk(b"i IDLE\r\n") == b"+ idling\r\n"
    await other.talk(b"a STORE 5 +FLAGS.SILENT (\\Flagged)\r\n")
    pushed = await t.idle_events()
    assert b"* 5 FETCH (FLAGS (\\Flagged" in pushed
    assert b'* ESEARCH (TAG "s") ADDTO (0 5)\r\n' in pushed
    assert (await t.talk(b"DONE\r\n")).endswith(b"i OK Idle completed.\r\n")


async def test_sort_update_reports_positions() -> None:
    _, t = await five()  # subjects m5 m4 m3 m2 m1: by subject the order is 5 4 3 2 1
    reply = await t.talk(b"s SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 SEEN\r\n")
    assert reply == b'* ESEARCH (TAG "s")\r\ns OK Sort completed.\r\n'
    reply = await t.talk(b"a STORE 2,4 +FLAGS.SILENT (\\Seen)\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "s") ADDTO (1 4 2 2)\r\n')
    reply = await t.talk(b"b STORE 3 +FLAGS.SILENT (\\Seen)\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "s") ADDTO (2 3)\r\n')  # between 4 and 2
    reply = await t.talk(b"c STORE 4 -FLAGS.SILENT (\\Seen)\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "s") REMOVEFROM (1 4)\r\n')
    reply = await t.talk(b"d SORT RETURN (ALL) (SUBJECT) UTF-8 SEEN\r\n")
    assert reply.startswith(b'* ESEARCH (TAG "d") ALL 3,2\r\n')


async def test_too_many_live_results() -> None:
    _, t = await five()
    for i in range(MAX_LIVE_RESULTS):
        assert b"NOUPDATE" not in await t.talk(b"s%d SEARCH RETURN (UPDATE) SEEN\r\n" % i)
    reply = await t.talk(b"x SEARCH RETURN (UPDATE) SEEN\r\n")
    assert b'* NO [NOUPDATE "x"] ' in reply and reply.endswith(b"x OK Search completed.\r\n")


async def test_live_results_end_with_the_selection() -> None:
    _, t = await five()
    await t.talk(b"s SEARCH RETURN (UPDATE) SEEN\r\n")
    await t.select()
    reply = await t.talk(b"a STORE 1 +FLAGS.SILENT (\\Seen)\r\n")
    assert reply == b"a OK Store completed.\r\n"


async def test_remembered_answers_follow_changes() -> None:
    """A repeated SORT or THREAD may be answered from memory, but only for the same messages
    under the same numbers."""
    _, t = await five()
    assert (await t.talk(b"a SORT (SUBJECT) UTF-8 UNSEEN\r\n")).startswith(b"* SORT 5 4 3 2 1\r\n")
    assert (await t.talk(b"b SORT (SUBJECT) UTF-8 UNSEEN\r\n")).startswith(b"* SORT 5 4 3 2 1\r\n")
    await t.talk(b"c STORE 4 +FLAGS.SILENT (\\Seen)\r\n")
    assert (await t.talk(b"d SORT (SUBJECT) UTF-8 UNSEEN\r\n")).startswith(b"* SORT 5 3 2 1\r\n")
    assert (await t.talk(b"e THREAD ORDEREDSUBJECT UTF-8 ALL\r\n")).startswith(
        b"* THREAD (1)(2)(3)(4)(5)\r\n"
    )
    await t.talk(b"f STORE 1 +FLAGS.SILENT (\\Deleted)\r\ng EXPUNGE\r\n")
    assert (await t.talk(b"h THREAD ORDEREDSUBJECT UTF-8 ALL\r\n")).startswith(
        b"* THREAD (1)(2)(3)(4)\r\n"
    )
    reply = await t.talk(b"i UID THREAD ORDEREDSUBJECT UTF-8 ALL\r\n")
    assert reply.startswith(b"* THREAD (2)(3)(4)(5)\r\n")


async def test_kept_refs_and_orderedsubject_follow_new_mail_and_expunges() -> None:
    """THREAD=REFS and ORDEREDSUBJECT are kept per folder like REFERENCES: after new mail and
    an expunge the kept answers, updated, are those a server with nothing kept works out."""
    store = MemoryStore()
    await store.ensure_user("ann")
    mail = messages(DATA / "threads.mbox")
    half = len(mail) // 2
    for date, msg in mail[:half]:
        await store.deliver("ann", msg, internal_date=date)
    t = Talker(make_context(store))
    await t.login()
    await t.select()
    commands = [
        b"%s THREAD %s UTF-8 ALL\r\n" % (uid, algorithm)
        for uid in (b"a", b"a UID")
        for algorithm in (b"REFS", b"ORDEREDSUBJECT", b"REFERENCES")
    ]
    for command in commands:
        assert b"a OK" in await t.talk(command)
    uidvalidity = (await (await store.open("ann")).snapshot()).uidvalidity
    kept = t.session.shared.sort.kept
    for algorithm in ("REFS", "ORDEREDSUBJECT", "REFERENCES"):
        for by_uid in (True, False):
            assert kept.get(("THREAD", "ann", "INBOX", uidvalidity, algorithm, by_uid))

    async def answers(talker: Talker) -> list[bytes]:
        return [untagged(await talker.talk(c)) for c in commands]

    for date, msg in mail[half:]:
        await store.deliver("ann", msg, internal_date=date)
    await t.talk(b"n NOOP\r\n")
    fresh = Talker(make_context(store))
    await fresh.login()
    await fresh.select()
    assert await answers(t) == await answers(fresh)
    await t.talk(b"s STORE 2,5 +FLAGS.SILENT (\\Deleted)\r\nx EXPUNGE\r\n")
    await fresh.talk(b"n NOOP\r\n")
    later = Talker(make_context(store))
    await later.login()
    await later.select()
    assert await answers(t) == await answers(later)


async def test_within_older_and_younger() -> None:
    """WITHIN (RFC 5032), now advertised: OLDER/YOUNGER against the internal date."""
    store = MemoryStore()
    await store.ensure_user("ann")
    now = time.time()
    await store.deliver("ann", b"Subject: old\r\n\r\nx\r\n", internal_date=now - 7200)
    await store.deliver("ann", b"Subject: new\r\n\r\nx\r\n", internal_date=now - 60)
    t = Talker(make_context(store))
    await t.login()
    assert b" WITHIN " in await t.talk(b"c CAPABILITY\r\n")
    await t.select()
    assert (await t.talk(b"a SEARCH YOUNGER 3600\r\n")).startswith(b"* SEARCH 2\r\n")
    assert (await t.talk(b"b SEARCH OLDER 3600\r\n")).startswith(b"* SEARCH 1\r\n")
    reply = await t.talk(b"d SORT (REVERSE ARRIVAL) UTF-8 YOUNGER 100000\r\n")
    assert reply.startswith(b"* SORT 2 1\r\n")
    assert (await t.talk(b"e SEARCH OLDER 0\r\n")).startswith(b"e BAD ")
