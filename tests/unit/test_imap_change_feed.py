"""IDLE fan-out and shared folder deltas (mailsrv/imap/live.py, mailbox_view.py)."""

from __future__ import annotations

import asyncio

from mailsrv.imap.mailbox_view import diff
from mailsrv.store.base import INBOX, FlagMode, MessageInfo
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context


async def _idler(ctx, folder: str = "INBOX") -> Talker:  # type: ignore[no-untyped-def]
    t = Talker(ctx)
    await t.login()
    await t.select(folder)
    assert await t.talk(b"i IDLE\r\n") == b"+ idling\r\n"
    return t


async def _store() -> MemoryStore:
    store = MemoryStore()
    await store.ensure_user("ann")
    await store.deliver("ann", MESSAGE)
    await store.deliver("ann", MESSAGE)
    return store


def _info(uid: int, *flags: str) -> MessageInfo:
    return MessageInfo(uid, f"k{uid}", frozenset(flags), 10, 0.0)


def test_diff_append_only_and_general() -> None:
    a, b, c = _info(1), _info(2), _info(3)
    appended = diff((a, b), (a, b, c))
    assert appended.added == (c,) and appended.gone == () and appended.changed == ()
    b2 = _info(2, "\\Seen", "Junk")
    d = _info(4, "$Forwarded")
    general = diff((a, b, c), (b2, c, d))
    assert general.gone == (1,)
    assert general.changed == (b2,)
    assert general.added_uids == (4,) and general.added_keywords == {"$Forwarded"}


async def test_one_delivery_reaches_every_idler_without_their_own_wakeup() -> None:
    store = await _store()
    ctx = make_context(store)
    idlers = [await _idler(ctx) for _ in range(50)]
    await store.deliver("ann", MESSAGE)
    for _ in range(3):
        await asyncio.sleep(0)  # the fan-out task runs; no session awaits anything
    pushed = [t.sink.take() for t in idlers]
    assert pushed[0] == b"* 3 EXISTS\r\n* 3 RECENT\r\n"  # the first session claims \Recent
    assert all(p == b"* 3 EXISTS\r\n* 0 RECENT\r\n" for p in pushed[1:])
    for t in idlers:
        assert await t.talk(b"DONE\r\n") == b"i OK Idle completed.\r\n"


async def test_other_folder_and_fetched_events_push_nothing() -> None:
    store = await _store()
    ctx = make_context(store)
    t = await _idler(ctx)
    await store.deliver("ann", MESSAGE, folder="Trash")
    await asyncio.sleep(0.01)
    assert t.sink.take() == b""
    assert await t.talk(b"DONE\r\n") == b"i OK Idle completed.\r\n"


async def test_idler_hears_expunge_and_flags_of_others() -> None:
    store = await _store()
    ctx = make_context(store)
    t = await _idler(ctx)
    box = await store.open("ann", INBOX)
    uids = [m.uid for m in (await box.snapshot()).messages]
    await box.store_flags([uids[0]], ["\\Flagged"], FlagMode.ADD)
    await asyncio.sleep(0.01)
    assert b"* 1 FETCH (FLAGS (\\Flagged" in t.sink.take()
    await box.expunge([uids[-1]])
    await asyncio.sleep(0.01)
    assert t.sink.take() == b"* %d EXPUNGE\r\n" % len(uids)
    assert await t.talk(b"DONE\r\n") == b"i OK Idle completed.\r\n"


async def test_flags_changed_back_by_another_session_are_reported() -> None:
    store = await _store()
    ctx = make_context(store)
    a, b = Talker(ctx), Talker(ctx)
    for t in (a, b):
        await t.login()
        await t.select()
    await a.talk(b"a1 STORE 1 +FLAGS (\\Flagged)\r\n")
    await b.talk(b"b1 STORE 1 -FLAGS.SILENT (\\Flagged)\r\n")
    reply = await a.talk(b"a2 NOOP\r\n")
    assert b"* 1 FETCH (FLAGS (" in reply and b"\\Flagged" not in reply


async def test_sessions_release_the_shared_feed() -> None:
    store = await _store()
    ctx = make_context(store)
    t = await _idler(ctx)
    feed = t.session.shared.feeds.attach(store, "ann")
    assert feed.sessions == 2 and feed.watches[INBOX].idlers
    feed.release()
    t.session.close()
    assert store._hub.subscriber_count() == 0
