"""NOOP and CHECK look at the disk (as Dovecot does), so a change another process made a moment
ago is told at once, not only once its change event arrives. Two ``MaildirStore``s on one root
stand for two processes; the session's store polls so rarely that only the look can find it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsrv.store.base import FLAGGED, FlagMode
from mailsrv.store.maildir import MaildirStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[MaildirStore, MaildirStore]]:
    root = tmp_path / "mail"
    other = MaildirStore(root, create_users=True)
    await other.ensure_user("ann")
    await other.deliver("ann", MESSAGE)
    mine = MaildirStore(root, watch="poll", poll_interval=3600.0)
    try:
        yield other, mine
    finally:
        await mine.close()
        await other.close()


async def _selected(store: MaildirStore) -> Talker:
    imap = Talker(make_context(store))  # type: ignore[arg-type]  # any Store will do
    await imap.login()
    await imap.select()
    return imap


@pytest.mark.parametrize("command", [b"NOOP", b"CHECK"])
async def test_another_process_flag_change_is_told_at_once(
    stores: tuple[MaildirStore, MaildirStore], command: bytes
) -> None:
    other, mine = stores
    imap = await _selected(mine)
    await (await other.open("ann")).store_flags([1], [FLAGGED], FlagMode.ADD)
    reply = await imap.talk(b"N " + command + b"\r\n")
    assert b"* 1 FETCH (FLAGS (\\Flagged" in reply, reply
    assert reply.endswith(b" completed.\r\n")


async def test_another_process_delivery_is_told_at_once_and_recent_here_only(
    stores: tuple[MaildirStore, MaildirStore],
) -> None:
    other, mine = stores
    imap = await _selected(mine)  # claims UID 1 as recent
    await other.deliver("ann", MESSAGE)
    reply = await imap.talk(b"N NOOP\r\n")
    assert b"* 2 EXISTS\r\n* 2 RECENT\r\n" in reply, reply
    elsewhere = await _selected(other)
    assert b"* 0 RECENT\r\n" in await elsewhere.talk(b"S SELECT INBOX\r\n")
