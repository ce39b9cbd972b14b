"""MOVE to the selected mailbox itself (RFC 6851 §3.3 allows it): the messages get new UIDs,
COPYUID names them, the originals are expunged, and the new ones come in as EXISTS."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsrv.store.maildir import MaildirStore
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context


async def _three(store: MaildirStore | MemoryStore) -> tuple[Talker, int]:
    await store.ensure_user("ann")
    for _ in range(3):
        await store.deliver("ann", MESSAGE, flags=["\\Flagged"])
    t = Talker(make_context(store))  # type: ignore[arg-type]  # any Store will do
    await t.login()
    await t.select()
    return t, (await (await store.open("ann")).snapshot()).uidvalidity


@pytest.mark.parametrize("kind", ["memory", "maildir"])
async def test_move_to_the_selected_mailbox(tmp_path: Path, kind: str) -> None:
    store = MemoryStore() if kind == "memory" else MaildirStore(tmp_path / "mail", True)
    t, uidvalidity = await _three(store)
    assert await t.talk(b"a MOVE 1 INBOX\r\n") == (
        b"* OK [COPYUID %d 1 4] Moved UIDs.\r\n" % uidvalidity
        + b"* 1 EXPUNGE\r\n* 3 EXISTS\r\n* 3 RECENT\r\na OK Move completed.\r\n"
    )
    assert await t.talk(b"b UID MOVE 2:3 inbox\r\n") == (
        b"* OK [COPYUID %d 2:3 5:6] Moved UIDs.\r\n" % uidvalidity
        + b"* 2 EXPUNGE\r\n* 1 EXPUNGE\r\n* 3 EXISTS\r\n* 3 RECENT\r\nb OK Move completed.\r\n"
    )
    assert await t.talk(b"c FETCH 1:* (UID FLAGS)\r\n") == (
        b"* 1 FETCH (UID 4 FLAGS (\\Flagged \\Recent))\r\n"
        b"* 2 FETCH (UID 5 FLAGS (\\Flagged \\Recent))\r\n"
        b"* 3 FETCH (UID 6 FLAGS (\\Flagged \\Recent))\r\n"
        b"c OK Fetch completed.\r\n"
    )
    messages = (await (await store.open("ann")).snapshot()).messages
    assert [m.uid for m in messages] == [4, 5, 6]
    if isinstance(store, MaildirStore):
        await store.close()


async def test_another_session_sees_the_move_to_self() -> None:
    store = MemoryStore()
    t, uidvalidity = await _three(store)
    other = Talker(t.ctx)
    await other.login()
    await other.select()
    assert (await t.talk(b"a MOVE 1 INBOX\r\n")).startswith(b"* OK [COPYUID %d 1 4]" % uidvalidity)
    assert await other.talk(b"n NOOP\r\n") == (
        b"* 1 EXPUNGE\r\n* 3 EXISTS\r\n* 0 RECENT\r\nn OK Noop completed.\r\n"
    )
    assert await other.talk(b"f UID FETCH 1:* UID\r\n") == (
        b"* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 3)\r\n* 3 FETCH (UID 4)\r\nf OK Fetch completed.\r\n"
    )
