"""Mod-sequences (RFC 7162) in the store: raised by every change, shared, never backwards."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailsrv.store.base import DELETED, FLAGGED, SEEN, FlagMode, Store
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.modseq import MODSEQ_FILE, ModseqLog
from tests.store.conftest import message


async def _modseqs(store: Store, folder: str = "INBOX") -> tuple[int, dict[int, int]]:
    snap = await (await store.open("alice", folder)).snapshot()
    return snap.highestmodseq, {m.uid: m.modseq for m in snap.messages}


async def test_every_change_raises_modseq(store: Store) -> None:
    uids = [await store.deliver("alice", message(n)) for n in range(3)]
    h0, per = await _modseqs(store)
    assert h0 > 0 and all(0 < v <= h0 for v in per.values())
    box = await store.open("alice")
    infos = await box.store_flags([uids[1]], [SEEN], FlagMode.ADD)
    h1, per1 = await _modseqs(store)
    assert h1 > h0 and per1[uids[1]] == h1 == infos[0].modseq
    assert per1[uids[0]] == per[uids[0]]
    # No change, no new mod-sequence.
    await box.store_flags([uids[1]], [SEEN], FlagMode.ADD)
    assert (await _modseqs(store))[0] == h1
    await box.store_flags(uids, [DELETED], FlagMode.ADD)
    await box.expunge([uids[0]])
    h2, per2 = await _modseqs(store)
    assert h2 > h1 and uids[0] not in per2
    assert await box.vanished_since(h1) == [uids[0]]
    assert await box.vanished_since(h2) == []
    new = await store.deliver("alice", message(9))
    h3, per3 = await _modseqs(store)
    assert h3 > h2 and per3[new] == h3


async def test_move_is_an_expunge_in_the_source(store: Store) -> None:
    uid = await store.deliver("alice", message())
    h0, _ = await _modseqs(store)
    pairs = await (await store.open("alice")).move([uid], "Trash")
    h1, per = await _modseqs(store)
    assert h1 > h0 and not per
    assert await (await store.open("alice")).vanished_since(h0) == [uid]
    _, trash = await _modseqs(store, "Trash")
    assert trash[pairs[0][1]] > 0


async def test_persisted_and_shared_by_two_stores(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    a, b = MaildirStore(root), MaildirStore(root)
    try:
        await a.ensure_user("alice")
        uid = await a.deliver("alice", message())
        box_a = await a.open("alice")
        box_b = await b.open("alice")
        await box_b.snapshot()
        infos = await box_a.store_flags([uid], [FLAGGED], FlagMode.ADD)
        time.sleep(0.1)  # past the index's re-check interval
        snap_b = await box_b.snapshot()
        assert snap_b.messages[0].modseq == infos[0].modseq == snap_b.highestmodseq
        # A change in b is seen by a with a higher mod-sequence.
        more = await box_b.store_flags([uid], [SEEN], FlagMode.ADD)
        time.sleep(0.1)
        snap_a = await box_a.snapshot()
        assert snap_a.messages[0].modseq == more[0].modseq > infos[0].modseq
    finally:
        await a.close()
        await b.close()
    c = MaildirStore(root)
    try:
        snap = await (await c.open("alice")).snapshot()
        assert snap.highestmodseq == more[0].modseq  # the same after a restart
    finally:
        await c.close()


async def test_change_on_disk_by_another_program(maildir: MaildirStore, tmp_path: Path) -> None:
    uid = await maildir.deliver("alice", message())
    box = await maildir.open("alice")
    before = await box.snapshot()
    new = tmp_path / "mail" / "alice" / "new"
    (name,) = os.listdir(new)
    os.rename(new / name, new.parent / "cur" / f"{name}:2,S")  # what a mail reader does
    time.sleep(0.1)
    after = await box.snapshot()
    assert after.messages[0].flags == {SEEN}
    assert after.messages[0].modseq == after.highestmodseq > before.highestmodseq
    (name,) = os.listdir(new.parent / "cur")
    os.unlink(new.parent / "cur" / name)
    time.sleep(0.1)
    gone = await box.snapshot()
    assert not gone.messages and gone.highestmodseq > after.highestmodseq
    assert await box.vanished_since(after.highestmodseq) == [uid]


async def test_never_backwards_when_our_file_is_deleted(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    s = MaildirStore(root)
    await s.ensure_user("alice")
    uid = await s.deliver("alice", message())
    box = await s.open("alice")
    for _ in range(5):
        await box.store_flags([uid], [SEEN], FlagMode.ADD)
        await box.store_flags([uid], [SEEN], FlagMode.REMOVE)
    seen = (await box.snapshot()).highestmodseq
    await s.close()
    os.unlink(root / "alice" / MODSEQ_FILE)
    s = MaildirStore(root)
    try:
        snap = await (await s.open("alice")).snapshot()
        assert snap.highestmodseq > seen
        assert snap.messages[0].modseq == snap.highestmodseq
        # Expunges from before the new log are unknown: the caller falls back to missing UIDs.
        assert await (await s.open("alice")).vanished_since(seen) is None
    finally:
        await s.close()


def test_log_reads_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / MODSEQ_FILE
    path.write_text("mailsrv-modseq 1 V7 B100 E100\n1 100 :S\n1 101 :FS\n2 102 -\n3 10")
    log = ModseqLog(tmp_path)
    assert log.sync()
    assert log.uidvalidity == 7 and log.highest == 102
    assert log.modseq_of(1, "FS") == 101 and log.modseq_of(1, "S") is None
    assert log.vanished_since(100) == [2] and log.vanished_since(99) is None
    with path.open("a") as f:
        f.write("3 :x\n4 103 :\n")
    assert log.sync() and log.modseq_of(4, "") == 103


@pytest.mark.parametrize("junk", ["", "garbage\n", "mailsrv-modseq 1 V0\n"])
def test_unreadable_log_is_made_afresh(tmp_path: Path, junk: str) -> None:
    (tmp_path / MODSEQ_FILE).write_text(junk)
    log = ModseqLog(tmp_path)
    assert not log.sync()
    log.create_locked(5, {1: "S", 2: ""})
    assert log.sync() and log.uidvalidity == 5
    assert log.modseq_of(1, "S") == log.modseq_of(2, "") == log.highest >= log.base


def test_compaction_keeps_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mailsrv.store.modseq.SLACK_LINES", 5)
    monkeypatch.setattr("mailsrv.store.modseq.KEEP_EXPUNGED", 2)
    log = ModseqLog(tmp_path)
    log.create_locked(1, {1: "", 2: ""})
    for _ in range(10):
        log.bump_locked([(1, "S")])
        log.bump_locked([(1, "")])
    for uid in (2, 3, 4):
        log.bump_locked([(uid, None)])
    highest = log.highest
    assert log.compact_locked()
    fresh = ModseqLog(tmp_path)
    assert fresh.sync() and fresh.highest == highest
    assert fresh.modseq_of(1, "") == log.modseq_of(1, "")
    assert fresh.vanished_since(highest - 2) == [3, 4]
    assert fresh.vanished_since(highest - 3) is None  # the expunge of 2 was forgotten


async def test_empty_folder_has_a_highestmodseq(store: Store) -> None:
    snap = await (await store.open("alice", "Trash")).snapshot()
    assert snap.highestmodseq > 0 and not snap.messages


def test_a_writer_follows_a_log_another_process_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' logs on one folder: one compacts (a new file), the other's next append
    goes to the new file, above every value either has seen."""
    monkeypatch.setattr("mailsrv.store.modseq.SLACK_LINES", 3)
    monkeypatch.setattr("mailsrv.store.modseq.KEEP_EXPUNGED", 1)
    one, two = ModseqLog(tmp_path), ModseqLog(tmp_path)
    one.create_locked(9, {1: "", 2: ""})
    assert two.sync()
    two.bump_locked([(1, "S")])  # two's file is open for appending now
    for _ in range(6):
        one.bump_locked([(2, "F")])
        one.bump_locked([(2, "")])
    assert one.compact_locked()
    value = two.bump_locked([(1, "")])
    assert value == one.highest + 1
    fresh = ModseqLog(tmp_path)
    assert fresh.sync() and fresh.modseq_of(1, "") == value and fresh.highest == value
