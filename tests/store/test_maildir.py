"""MaildirStore specifics: the files on disk, persistence, other processes, damage, speed."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailsrv.store import folder_ops
from mailsrv.store.base import (
    FLAGGED,
    SEEN,
    EventKind,
    FlagMode,
    MessageGone,
    StoreBusy,
)
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.uidlist import parse_uidlist
from tests.store.conftest import message

ROOT_SCRIPT = """
import asyncio, sys
from pathlib import Path
from mailsrv.store.maildir import MaildirStore

async def main(root, n, tag):
    store = MaildirStore(Path(root), create_users=True)
    for i in range(n):
        await store.deliver("alice", b"Subject: %s %d\\n\\nbody\\n" % (tag.encode(), i))
    await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
"""


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder / "new")) + sorted(os.listdir(folder / "cur"))


def _spawn(root: Path, n: int, tag: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen([sys.executable, "-c", ROOT_SCRIPT, str(root), str(n), tag], env=env)


async def test_files_on_disk(maildir: MaildirStore) -> None:
    user = maildir.root / "alice"
    await maildir.deliver("alice", message(1))
    await maildir.deliver("alice", message(2), flags=[SEEN, FLAGGED, "$Forwarded"])
    (new,) = os.listdir(user / "new")
    assert re.fullmatch(r"\d+\.M\d+P\d+Q\d+\.[^,/:]+,S=(\d+),W=\1", new)
    assert (user / "new" / new).read_bytes() == message(1).replace(b"\n", b"\r\n")
    (cur,) = os.listdir(user / "cur")
    assert cur.endswith(":2,FSa")
    assert (user / "dovecot-keywords").read_text() == "0 $Forwarded\n"
    lines = (user / "dovecot-uidlist").read_text().splitlines()
    # Records are appended; the header keeps the N it was written with (as Dovecot does).
    assert re.fullmatch(r"3 V\d+ N[13] G[0-9a-f]{32}", lines[0])
    assert lines[1:] == [f"1 :{new}", f"2 :{cur.partition(':')[0]}"]
    assert os.listdir(user / "tmp") == []
    assert (user / ".Sent" / "maildirfolder").exists()
    assert (user / "subscriptions").read_text().startswith("V\t2\n\n")


async def test_uids_survive_a_restart(tmp_path: Path) -> None:
    first = MaildirStore(tmp_path)
    await first.ensure_user("alice")
    for n in range(3):
        await first.deliver("alice", message(n), flags=["Work"] if n == 1 else ())
    box = await first.open("alice")
    await box.expunge([1])
    before = await box.snapshot()
    await first.close()

    second = MaildirStore(tmp_path)
    after = await (await second.open("alice")).snapshot()
    assert after.uidvalidity == before.uidvalidity
    assert [(m.uid, m.key, m.flags, m.size) for m in after.messages] == [
        (m.uid, m.key, m.flags, m.size) for m in before.messages
    ]
    assert await second.deliver("alice", message(9)) == 4
    await second.close()


async def test_handles_share_one_index(maildir: MaildirStore) -> None:
    a = await maildir.open("alice")
    b = await maildir.open("alice", "inbox")
    assert a._index is b._index
    await maildir.deliver("alice", message())
    assert (await a.snapshot()).version == (await b.snapshot()).version


async def test_new_to_cur_by_someone_else_keeps_uid(maildir: MaildirStore) -> None:
    user = maildir.root / "alice"
    uid = await maildir.deliver("alice", message())
    (name,) = os.listdir(user / "new")
    os.rename(user / "new" / name, user / "cur" / (name + ":2,S"))
    box = await maildir.open("alice")
    await asyncio.sleep(0.1)
    (info,) = (await box.snapshot()).messages
    assert (info.uid, info.flags) == (uid, {SEEN})
    assert await box.read(uid) == message().replace(b"\n", b"\r\n")


async def test_foreign_delivery_gets_next_uid(maildir: MaildirStore) -> None:
    user = maildir.root / "alice"
    await maildir.deliver("alice", message(1))
    box = await maildir.open("alice")
    await box.snapshot()
    # Another MDA: LF line ends, no S=/W= in the name.
    (user / "tmp" / "1700000000.12345_1.otherhost").write_bytes(b"Subject: lf\n\nx\ny\n")
    os.rename(
        user / "tmp" / "1700000000.12345_1.otherhost", user / "new" / "1700000000.12345_1.otherhost"
    )
    await asyncio.sleep(0.1)
    snap = await box.snapshot()
    assert [m.uid for m in snap.messages] == [1, 2]
    data = await box.read(2)
    assert data == b"Subject: lf\r\n\r\nx\r\ny\r\n"
    assert snap.messages[1].size == len(data)
    assert snap.messages[1].internal_date == 1_700_000_000
    assert "2 W21 :1700000000.12345_1.otherhost" in (user / "dovecot-uidlist").read_text()


async def test_external_change_detection(maildir: MaildirStore) -> None:
    box = await maildir.open("alice")
    await box.snapshot()
    sub = maildir.subscribe("alice")
    proc = _spawn(maildir.root, 1, "ext")
    assert await asyncio.to_thread(proc.wait) == 0
    event = await asyncio.wait_for(sub.get(), timeout=5)
    assert (event.kind, event.folder) == (EventKind.EXTERNAL, "INBOX")
    assert len((await box.snapshot()).messages) == 1
    sub.close()


async def test_concurrent_delivery_from_two_processes(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    procs = [_spawn(tmp_path, 40, tag) for tag in ("one", "two")]
    ours = [await store.deliver("alice", message(n)) for n in range(20)]
    assert [await asyncio.to_thread(p.wait) for p in procs] == [0, 0]
    await store.close()

    fresh = MaildirStore(tmp_path)
    snap = await (await fresh.open("alice")).snapshot()
    uids = [m.uid for m in snap.messages]
    assert len(uids) == 100 == len(set(uids))
    assert uids == list(range(1, 101))
    assert set(ours) <= set(uids)
    ul = parse_uidlist((tmp_path / "alice" / "dovecot-uidlist").read_text())
    assert not ul.damaged and len(ul.records) == 100
    assert len(_files(tmp_path / "alice")) == 100
    await fresh.close()


async def test_failed_delivery_leaves_nothing(
    maildir: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = maildir.root / "alice"

    def broken_rename(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(folder_ops.os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        await maildir.deliver("alice", message())
    monkeypatch.undo()
    assert _files(user) == []
    assert os.listdir(user / "tmp") == []
    assert await maildir.deliver("alice", message()) == 1


async def test_whole_files_only_in_new(maildir: MaildirStore) -> None:
    user = maildir.root / "alice"
    big = b"Subject: big\r\n\r\n" + b"x" * 2_000_000 + b"\r\n"
    seen_partial = []
    stop = False

    def watch() -> None:
        while not stop:
            for name in os.listdir(user / "new"):
                size = int(re.search(r",S=(\d+)", name).group(1))  # type: ignore[union-attr]
                if os.path.getsize(user / "new" / name) != size:
                    seen_partial.append(name)

    watcher = asyncio.create_task(asyncio.to_thread(watch))
    for _ in range(5):
        await maildir.deliver("alice", big)
    stop = True
    await watcher
    assert seen_partial == []
    assert len(os.listdir(user / "new")) == 5


async def test_damaged_uidlist_rebuilt_above_old_uids(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    for n in range(3):
        await store.deliver("alice", message(n))
    old = await (await store.open("alice")).snapshot()
    await store.close()
    path = tmp_path / "alice" / "dovecot-uidlist"
    path.write_text("garbage header\n" + "\n".join(path.read_text().splitlines()[1:]) + "\n")

    fresh = MaildirStore(tmp_path)
    snap = await (await fresh.open("alice")).snapshot()
    assert snap.uidvalidity != old.uidvalidity
    assert [m.uid for m in snap.messages] == [4, 5, 6]
    assert not parse_uidlist(path.read_text()).damaged
    await fresh.close()


async def test_missing_uidlist_rebuilt(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    await store.deliver("alice", message())
    old = await (await store.open("alice")).snapshot()
    await store.close()
    (tmp_path / "alice" / "dovecot-uidlist").unlink()
    fresh = MaildirStore(tmp_path)
    snap = await (await fresh.open("alice")).snapshot()
    assert snap.uidvalidity != old.uidvalidity
    assert [m.uid for m in snap.messages] == [1]
    await fresh.close()


async def test_flag_change_by_another_process(maildir: MaildirStore) -> None:
    user = maildir.root / "alice"
    uid = await maildir.deliver("alice", message(), flags=[SEEN])
    box = await maildir.open("alice")
    await box.snapshot()
    (name,) = os.listdir(user / "cur")
    os.rename(user / "cur" / name, user / "cur" / (name[: -len("S")] + "FS"))
    # The handle still points at the old name: reading finds the file again.
    assert await box.read(uid) == message().replace(b"\n", b"\r\n")
    out = await box.store_flags([uid], ["\\Draft"], FlagMode.ADD)
    assert out[0].flags == {SEEN, FLAGGED, "\\Draft"}


async def test_expunged_elsewhere_is_gone(maildir: MaildirStore) -> None:
    user = maildir.root / "alice"
    uid = await maildir.deliver("alice", message())
    box = await maildir.open("alice")
    await box.snapshot()
    (name,) = os.listdir(user / "new")
    os.unlink(user / "new" / name)
    with pytest.raises(MessageGone):
        await box.read(uid)
    assert (await box.snapshot()).messages == ()


async def test_locked_folder_is_busy(
    maildir: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailsrv.store import uidlist

    monkeypatch.setattr(uidlist, "LOCK_WAIT_SECONDS", 0.05)
    (maildir.root / "alice" / "dovecot-uidlist.lock").write_text("1:elsewhere")
    with pytest.raises(StoreBusy):
        await maildir.deliver("alice", message())
    assert _files(maildir.root / "alice") == []
    assert os.listdir(maildir.root / "alice" / "tmp") == []


async def test_special_use_remembered(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    await store.create_folder("alice", "Sent Items", special_use="\\Sent")
    await store.rename_folder("alice", "Sent Items", "Outbox")
    await store.close()
    fresh = MaildirStore(tmp_path)
    uses = {f.name: f.special_use for f in await fresh.list_folders("alice")}
    assert uses["Outbox"] == "\\Sent"
    assert uses["Sent"] is None  # the attribute moved to the folder that claimed it
    assert uses["Trash"] == "\\Trash"
    await fresh.close()


async def test_create_users_on_delivery(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path, create_users=True)
    assert await store.deliver("newbie", message()) == 1
    assert await store.list_users() == ["newbie"]
    assert "Trash" in [f.name for f in await store.list_folders("newbie")]
    await store.close()


async def test_extra_files_do_not_look_like_folders(maildir: MaildirStore) -> None:
    uid = await maildir.deliver("alice", message())
    box = await maildir.open("alice")
    await box.set_cached(uid, "k", b"v")
    await asyncio.sleep(0)
    await maildir.create_folder("alice", "X")
    await maildir.delete_folder("alice", "X")
    for name in os.listdir(maildir.root / "alice"):
        if not (maildir.root / "alice" / name).is_dir():
            assert not name.startswith(".") and not name[0].isdigit(), name
    names = {f.name for f in await maildir.list_folders("alice")}
    assert names == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}


async def test_watcher_stops_on_close(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    await store.open("alice")
    assert store._watcher.running
    await store.close()
    assert not store._watcher.running


async def test_large_folder_listing(tmp_path: Path) -> None:
    """10,000 messages: a cold listing reads the uidlist and lists directories, nothing more."""
    user = tmp_path / "alice"
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    body = b"Subject: bulk\r\n\r\nbody\r\n"
    for i in range(10_000):
        name = f"{1_700_000_000 + i}.M0P1Q{i}.bulk,S={len(body)},W={len(body)}"
        (user / "cur" / (name + ":2,S")).write_bytes(body)
    t0 = time.perf_counter()
    snap = await (await store.open("alice")).snapshot()
    t_assign = time.perf_counter() - t0
    assert [m.uid for m in snap.messages[:3]] == [1, 2, 3]
    assert len(snap.messages) == 10_000
    await store.close()

    cold = MaildirStore(tmp_path)
    t0 = time.perf_counter()
    box = await cold.open("alice")
    snap = await box.snapshot()
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(10):
        again = await box.snapshot()
    t_warm = (time.perf_counter() - t0) / 10
    assert again.messages == snap.messages
    assert all(m.flags == {SEEN} for m in snap.messages)
    print(
        f"\n10k folder: first open (assign UIDs) {t_assign * 1000:.1f} ms, "
        f"cold open {t_cold * 1000:.1f} ms, warm snapshot {t_warm * 1000:.3f} ms"
    )
    await cold.close()


async def test_idle_indexes_are_forgotten(
    maildir: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailsrv.store import indexes

    monkeypatch.setattr(indexes, "MAX_INDEXES", 4)
    held = await maildir.open("alice", "Trash")
    for n in range(8):
        await maildir.create_folder("alice", f"F{n}")
        await maildir.deliver("alice", message(n), folder=f"F{n}")
    assert len(maildir._indexes) <= 5
    assert ("alice", "Trash") in maildir._indexes  # an open handle keeps its index
    assert [m.uid for m in (await held.snapshot()).messages] == []
    box = await maildir.open("alice", "F0")
    assert [m.uid for m in (await box.snapshot()).messages] == [1]


def test_works_under_uvloop(tmp_path: Path) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[list[int], EventKind]:
        store = MaildirStore(tmp_path, create_users=True)
        await store.deliver("alice", message(1))
        box = await store.open("alice")
        await box.store_flags([1], [SEEN], FlagMode.ADD)
        sub = store.subscribe("alice")
        proc = _spawn(tmp_path, 1, "uv")
        await asyncio.to_thread(proc.wait)
        event = await asyncio.wait_for(sub.get(), timeout=5)
        uids = [m.uid for m in (await box.snapshot()).messages]
        await store.close()
        return uids, event.kind

    assert uvloop.run(main()) == ([1, 2], EventKind.EXTERNAL)


async def test_deleted_folder_handles(maildir: MaildirStore) -> None:
    from mailsrv.store.base import NoSuchFolder

    await maildir.create_folder("alice", "Gone")
    uid = await maildir.deliver("alice", message(), folder="Gone")
    box = await maildir.open("alice", "Gone")
    await box.snapshot()
    await maildir.delete_folder("alice", "Gone")
    with pytest.raises(MessageGone):
        await box.read(uid)
    with pytest.raises(NoSuchFolder):
        await box.snapshot()


async def test_a_delivery_in_flight_with_an_old_date_survives_another_process_opening_the_folder(
    tmp_path: Path,
) -> None:
    """A delivery dates its tmp/ file to the message's internal date (years back for an APPEND
    of old mail) before the rename: a second store opening the folder at that moment (another
    worker) must not take it for a crashed delivery's left-over and remove it."""
    first = MaildirStore(tmp_path, create_users=True)
    await first.deliver("alice", message(1))
    tmp = tmp_path / "alice" / "tmp" / "1203699983.M0P1Q1.host,S=9,W=9"
    tmp.write_bytes(b"in flight")
    os.utime(tmp, (1203699983, 1203699983))  # as _write_tmp does with the internal date
    second = MaildirStore(tmp_path)
    box = await second.open("alice")
    assert len((await box.snapshot()).messages) == 1
    assert tmp.exists()  # changed just now: not a left-over, whatever its mtime says
    await first.close()
    await second.close()


async def test_tmp_left_overs_are_removed_when_a_folder_is_first_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailsrv.store import folder

    store = MaildirStore(tmp_path, create_users=True)
    await store.deliver("alice", message(1))
    await store.close()
    left = tmp_path / "alice" / "tmp" / "1.M0P1Q9.host"
    left.write_bytes(b"half a message")
    monkeypatch.setattr(folder, "TMP_MAX_AGE", -60)  # everything counts as 36 hours old
    again = MaildirStore(tmp_path)
    await (await again.open("alice")).snapshot()
    assert not left.exists()
    await again.close()
