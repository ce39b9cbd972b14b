"""The sequence numbers a session's view reports stay consistent with what the client was told
(imaptest's stress mode checks every EXISTS and EXPUNGE against its own count)."""

from __future__ import annotations

from mailsrv.imap.mailbox_view import MailboxView, ViewTables
from mailsrv.store.base import INBOX
from mailsrv.store.memory import MemoryStore

MSG = b"Subject: x\r\n\r\nbody\r\n"


async def test_a_message_that_came_and_went_between_two_syncs_gets_no_expunge() -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    for _ in range(2):
        await store.deliver("ann", MSG)
    box = await store.open("ann", INBOX)
    view = MailboxView(ViewTables(), store, box, await box.snapshot(), readonly=False)
    assert view.updates(expunge=True, uid=False, rev2=True) == []
    uid = await store.deliver("ann", MSG)
    view.apply(await box.snapshot())  # seen arriving, not reported yet (a sync in progress)
    await box.expunge([uid])
    view.apply(await box.snapshot())  # and gone again before the session answered
    lines = view.updates(expunge=True, uid=False, rev2=True)
    assert not any(b"EXPUNGE" in line for line in lines), lines  # the client never had a 3
    assert all(line in (b"* 2 EXISTS\r\n",) for line in lines), lines


async def test_expunge_numbers_count_only_what_the_client_knows() -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    first = await store.deliver("ann", MSG)
    await store.deliver("ann", MSG)
    box = await store.open("ann", INBOX)
    view = MailboxView(ViewTables(), store, box, await box.snapshot(), readonly=False)
    await store.deliver("ann", MSG)
    view.apply(await box.snapshot())
    await box.expunge([first])
    view.apply(await box.snapshot())
    lines = view.updates(expunge=True, uid=False, rev2=True)
    assert lines == [b"* 1 EXPUNGE\r\n", b"* 2 EXISTS\r\n"]  # 2 known - 1, then 1 new: 2
