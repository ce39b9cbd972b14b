"""``Store.deliver_all`` (MULTIAPPEND): every message or none, on both stores, across a failure
in the middle and across a crash between the renames; and ``Store.usage`` for quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailsrv.store import append_journal, folder_ops
from mailsrv.store.base import SEEN, EventKind, FlagMode, NewMessage, NoSuchFolder, Store, Usage
from mailsrv.store.maildir import MaildirStore
from tests.store.conftest import message


async def test_all_go_in_with_ascending_uids_and_one_event(store: Store) -> None:
    await store.deliver("alice", message(0))
    events = store.subscribe("alice")
    msgs = [NewMessage(message(1)), NewMessage(message(2), frozenset({SEEN}), 1e9)]
    uids = await store.deliver_all("alice", "INBOX", msgs, actor="imap-1")
    assert uids == [2, 3]
    event = events.get_nowait()
    assert event is not None and event.kind is EventKind.APPENDED and event.uids == (2, 3)
    snap = await (await store.open("alice")).snapshot()
    assert [m.uid for m in snap.messages] == [1, 2, 3]
    assert snap.messages[2].flags == {SEEN} and snap.messages[2].internal_date == 1e9
    mbox = await store.open("alice")
    assert await mbox.read(3) == message(2).replace(b"\n", b"\r\n")


async def test_a_missing_folder_adds_nothing(store: Store) -> None:
    with pytest.raises(NoSuchFolder):
        await store.deliver_all("alice", "Nope", [NewMessage(message(1))])


async def test_usage_sums_every_folder(store: Store) -> None:
    assert await store.usage("alice") == Usage(0, 0)
    await store.deliver("alice", b"a\r\n")
    await store.deliver("alice", b"bcd\r\n", "Sent")
    assert await store.usage("alice") == Usage(8, 2)
    inbox = await store.open("alice")
    await inbox.store_flags([1], [SEEN], FlagMode.ADD)  # a rename: the same message
    await inbox.copy([1], "Archive")
    assert await store.usage("alice") == Usage(11, 3)
    await inbox.move([1], "Trash")
    assert await store.usage("alice") == Usage(11, 3)
    mbox = await store.open("alice", "Sent")
    await mbox.expunge([1])
    assert await store.usage("alice") == Usage(6, 2)


async def test_usage_sees_another_process(maildir: MaildirStore, tmp_path: Path) -> None:
    await maildir.deliver("alice", b"abc\r\n")
    other = MaildirStore(tmp_path / "mail")
    try:
        assert await other.usage("alice") == Usage(5, 1)
        await maildir.deliver("alice", b"de\r\n")
        await other._indexes.rescan(await other._indexes.get("alice", "INBOX"))  # its watcher's
        assert await other.usage("alice") == Usage(9, 2)
    finally:
        await other.close()


def _files(root: Path) -> list[str]:
    return sorted(n for sub in ("new", "cur") for n in os.listdir(root / sub))


async def test_a_failed_rename_takes_the_whole_set_back(
    maildir: MaildirStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "mail" / "alice"
    await maildir.deliver("alice", message(0))
    before = _files(inbox)
    real = os.rename
    calls = []

    def flaky(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(folder_ops.os, "rename", flaky)
    msgs = [NewMessage(message(1)), NewMessage(message(2)), NewMessage(message(3))]
    with pytest.raises(OSError, match="No space"):
        await maildir.deliver_all("alice", "INBOX", msgs)
    monkeypatch.setattr(folder_ops.os, "rename", real)
    assert _files(inbox) == before
    assert os.listdir(inbox / "tmp") == []
    snap = await (await maildir.open("alice")).snapshot()
    assert [m.uid for m in snap.messages] == [1]
    assert await maildir.deliver("alice", message(4)) == 2


async def test_a_crash_between_renames_is_rolled_back_by_the_next_writer(
    maildir: MaildirStore, tmp_path: Path
) -> None:
    """What a process killed after its first rename leaves: one file in new/ without a UID and
    the journal naming both. The next process to look gives UIDs to nothing of that set."""
    inbox = tmp_path / "mail" / "alice"
    await maildir.deliver("alice", message(0))
    await maildir.close()
    names = [("new", "1700000000.M1P1.host,S=10,W=10"), ("new", "1700000000.M2P1.host,S=10,W=10")]
    append_journal.write_journal(inbox, names)
    (inbox / "new" / names[0][1]).write_bytes(b"half a set")
    (inbox / "new" / "1700000001.M3P2.host,S=5,W=5").write_bytes(b"other")  # not in the set
    again = MaildirStore(tmp_path / "mail")
    try:
        snap = await (await again.open("alice")).snapshot()
        wire = message(0).replace(b"\n", b"\r\n")
        assert [m.size for m in snap.messages] == [len(wire), 5]
        assert not (inbox / "new" / names[0][1]).exists()
        assert [n for n in os.listdir(inbox / "tmp") if n.startswith(".mailsrv")] == []
    finally:
        await again.close()


async def test_a_journal_whose_set_was_recorded_keeps_it(
    maildir: MaildirStore, tmp_path: Path
) -> None:
    """Killed after the uidlist write, before removing the journal: the set stays."""
    inbox = tmp_path / "mail" / "alice"
    await maildir.deliver_all("alice", "INBOX", [NewMessage(message(1)), NewMessage(message(2))])
    await maildir.close()
    append_journal.write_journal(inbox, [("new", n) for n in _files(inbox)])
    (inbox / "new" / "1700000001.M3P2.host,S=5,W=5").write_bytes(b"other")
    again = MaildirStore(tmp_path / "mail")
    try:
        snap = await (await again.open("alice")).snapshot()
        assert [m.uid for m in snap.messages] == [1, 2, 3]
    finally:
        await again.close()
