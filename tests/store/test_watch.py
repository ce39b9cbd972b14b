"""The change watchers: inotify's record parsing, bursts, overflow, refused watches, closing."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import struct
from pathlib import Path

import pytest

from mailsrv.store import inotify, inotify_watcher, layout
from mailsrv.store.base import SEEN, EventKind, FlagMode
from mailsrv.store.folder import FolderIndex
from mailsrv.store.indexes import FolderIndexes
from mailsrv.store.inotify import InotifyEvent, parse_events
from mailsrv.store.inotify_watcher import InotifyWatcher
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.poller import PollWatcher
from tests.store.conftest import message

linux_only = pytest.mark.skipif(not inotify.available(), reason="inotify is Linux's")


def record(wd: int, mask: int, name: str = "", cookie: int = 0) -> bytes:
    raw = name.encode()
    padded = raw + b"\0" * (16 - len(raw) % 16) if raw else b""
    return struct.pack("iIII", wd, mask, cookie, len(padded)) + padded


def test_parse_events_reads_names_and_stops_at_a_cut_record() -> None:
    buf = record(1, inotify.IN_MOVED_TO, "1700000000.M1P2.host,S=5:2,", 7)
    buf += record(-1, inotify.IN_Q_OVERFLOW)
    buf += record(2, inotify.IN_CREATE | inotify.IN_ISDIR, ".Work")[:-3]
    assert parse_events(buf) == [
        InotifyEvent(1, inotify.IN_MOVED_TO, 7, "1700000000.M1P2.host,S=5:2,"),
        InotifyEvent(-1, inotify.IN_Q_OVERFLOW, 0, ""),
    ]


class FakeInotify:
    """An inotify instance whose watches are a dictionary (and a pipe for the loop)."""

    def __init__(self, refuse: str | None = None, code: int = errno.ENOSPC) -> None:
        self._read, self._write = os.pipe()
        self.wds: dict[str, int] = {}
        self.refuse = refuse
        self.code = code
        self.closed = False

    def fileno(self) -> int:
        return self._read

    def add_watch(self, path: str, mask: int) -> int:
        if self.refuse is not None and self.refuse in path:
            raise OSError(self.code, os.strerror(self.code), path)
        return self.wds.setdefault(path, len(self.wds) + 1)

    def rm_watch(self, wd: int) -> None:
        self.wds = {p: w for p, w in self.wds.items() if w != wd}

    def read_events(self) -> list[InotifyEvent]:
        return []

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)
        self.closed = True


def folder(root: Path, user: str, name: str = "INBOX") -> FolderIndex:
    home = root / user
    layout.make_maildir(home, folder=False)
    path = layout.folder_dir(home, name)
    if name != "INBOX":
        layout.make_maildir(path, folder=True)
    return FolderIndex(user, name, path, home)


class Rig:
    """An ``InotifyWatcher`` over fixed folders, counting the re-scans it asks for."""

    def __init__(self, tmp_path: Path, fake: FakeInotify, interval: float = 0.4) -> None:
        self.fake = fake
        self.folders = [
            folder(tmp_path, "alice"),
            folder(tmp_path, "alice", "Work"),
            folder(tmp_path, "bob"),
        ]
        self.rescans: list[tuple[str, str]] = []
        self.rescanned = asyncio.Event()
        self.watcher = InotifyWatcher(
            tmp_path, lambda: self.folders, set, self.rescan, interval, lambda: fake
        )

    async def rescan(self, idx: FolderIndex) -> None:
        self.rescans.append((idx.user, idx.name))
        self.rescanned.set()

    async def settle(self) -> None:
        """Start, watch, and let the first look at every folder pass."""
        self.watcher.ensure_started()
        await self.quiet()

    async def quiet(self) -> None:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not self.busy():
                return

    def busy(self) -> bool:
        return not self.watcher.settled

    def wd(self, idx: FolderIndex, sub: str = "") -> int:
        return self.fake.wds[str(idx.path / sub) if sub else str(idx.path)]


async def test_a_burst_is_one_rescan_per_folder(tmp_path: Path) -> None:
    rig = Rig(tmp_path, FakeInotify())
    await rig.settle()
    assert sorted(rig.rescans) == [("alice", "INBOX"), ("alice", "Work"), ("bob", "INBOX")]
    assert rig.watcher.watch_count == 9, "three per folder; INBOX's directory is the user root"
    rig.rescans.clear()
    inbox = rig.folders[0]
    rig.watcher.handle_events(
        [
            InotifyEvent(rig.wd(inbox, "new"), inotify.IN_MOVED_TO, 0, "1.M1P1.h,S=5"),
            InotifyEvent(rig.wd(inbox), inotify.IN_CREATE, 0, "dovecot-uidlist.lock"),
            InotifyEvent(rig.wd(inbox), inotify.IN_MOVED_TO, 0, "dovecot-uidlist"),
            InotifyEvent(rig.wd(inbox), inotify.IN_CLOSE_WRITE, 0, "mailsrv-cache.sqlite"),
            InotifyEvent(rig.wd(inbox, "cur"), inotify.IN_DELETE, 0, "2.M1P1.h,S=5:2,S"),
        ]
    )
    await rig.quiet()
    assert rig.rescans == [("alice", "INBOX")]
    await rig.watcher.stop()


async def test_a_writer_that_removes_its_dot_lock_is_looked_at_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = Rig(tmp_path, FakeInotify())
    await rig.settle()
    rig.rescans.clear()
    # From here a burst waits an hour for its look: only the lock's removal can start it.
    monkeypatch.setattr(inotify_watcher, "COALESCE_SECONDS", 3600.0)
    inbox = rig.folders[0]
    rig.watcher.handle_events(
        [
            InotifyEvent(rig.wd(inbox), inotify.IN_CREATE, 0, "dovecot-uidlist.lock"),
            InotifyEvent(rig.wd(inbox, "new"), inotify.IN_MOVED_TO, 0, "1.M1P1.h,S=5"),
            InotifyEvent(rig.wd(inbox), inotify.IN_CLOSE_WRITE, 0, "dovecot-uidlist"),
        ]
    )
    await asyncio.sleep(0)
    assert rig.rescans == [] and rig.busy(), "the writer still holds the lock: the burst waits"
    rig.watcher.handle_events(
        [InotifyEvent(rig.wd(inbox), inotify.IN_DELETE, 0, "dovecot-uidlist.lock")]
    )
    await rig.quiet()
    assert rig.rescans == [("alice", "INBOX")]
    assert not rig.busy(), "the hour-long wait was given up"
    await rig.watcher.stop()


async def test_files_that_are_not_the_folders_change_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, FakeInotify())
    await rig.settle()
    rig.rescans.clear()
    work = rig.folders[1]
    rig.watcher.handle_events(
        [
            InotifyEvent(rig.wd(work), inotify.IN_CLOSE_WRITE, 0, "mailsrv-cache.sqlite"),
            InotifyEvent(rig.wd(work), inotify.IN_CREATE, 0, "dovecot-uidlist.lock"),
            InotifyEvent(rig.wd(work), inotify.IN_DELETE, 0, "dovecot-uidlist.lock"),
            InotifyEvent(999, inotify.IN_CREATE, 0, "unknown watch"),
        ]
    )
    await rig.quiet()
    assert rig.rescans == []
    await rig.watcher.stop()


async def test_overflow_rescans_every_watched_folder(tmp_path: Path) -> None:
    rig = Rig(tmp_path, FakeInotify())
    await rig.settle()
    rig.rescans.clear()
    rig.watcher.handle_events([InotifyEvent(-1, inotify.IN_Q_OVERFLOW, 0, "")])
    await rig.quiet()
    assert sorted(rig.rescans) == [("alice", "INBOX"), ("alice", "Work"), ("bob", "INBOX")]
    await rig.watcher.stop()


async def test_folder_removed_under_the_user_root_is_rescanned(tmp_path: Path) -> None:
    rig = Rig(tmp_path, FakeInotify())
    await rig.settle()
    rig.rescans.clear()
    inbox, work = rig.folders[0], rig.folders[1]
    rig.watcher.handle_events(
        [
            InotifyEvent(rig.wd(inbox), inotify.IN_MOVED_FROM | inotify.IN_ISDIR, 1, ".Work"),
            InotifyEvent(rig.wd(work, "cur"), inotify.IN_IGNORED, 0, ""),
        ]
    )
    await rig.quiet()
    assert rig.rescans == [("alice", "Work")]
    assert rig.watcher.watch_count == 9 - 1, "the kernel dropped the watch of Work's cur/"
    await rig.watcher.stop()


async def test_watch_limit_polls_that_user_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "mailsrv.store.inotify_watcher")
    rig = Rig(tmp_path, FakeInotify(refuse="/bob"), interval=0.02)
    await rig.settle()
    assert rig.watcher.polled_users == {"bob"}
    assert not any("/bob" in p for p in rig.fake.wds)
    rig.rescans.clear()
    rig.rescanned.clear()
    for _ in range(5):  # bob's never-scanned index counts as changed at every poll
        await asyncio.wait_for(rig.rescanned.wait(), 10)
        rig.rescanned.clear()
    assert ("bob", "INBOX") in rig.rescans
    assert ("alice", "INBOX") not in rig.rescans, "alice is still watched, not polled"
    limit = [r for r in caplog.records if "max_user_watches" in r.getMessage()]
    assert len(limit) == 1 and "bob" in limit[0].getMessage()
    await rig.watcher.stop()


async def test_no_inotify_instance_polls_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse() -> inotify.Inotify:
        raise OSError(errno.EMFILE, "Too many open files")

    rescanned: list[str] = []
    idx = folder(tmp_path, "alice")

    async def rescan(i: FolderIndex) -> None:
        rescanned.append(i.user)

    watcher = InotifyWatcher(tmp_path, lambda: [idx], set, rescan, 0.02, refuse)
    watcher.ensure_started()
    for _ in range(500):
        await asyncio.sleep(0.01)
        if rescanned:
            break
    assert watcher.polling_all and rescanned == ["alice"] * len(rescanned) and rescanned
    assert any("cannot use inotify" in r.getMessage() for r in caplog.records)
    await watcher.stop()


async def test_stop_closes_the_descriptor(tmp_path: Path) -> None:
    fake = FakeInotify()
    rig = Rig(tmp_path, fake)
    await rig.settle()
    assert rig.watcher.running
    await rig.watcher.stop()
    assert fake.closed and not rig.watcher.running and rig.watcher.watch_count == 0


@linux_only
async def test_store_open_close_leaks_no_descriptor(tmp_path: Path) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    store = MaildirStore(tmp_path, watch="inotify")
    await store.ensure_user("alice")
    await store.close()
    before = fds()
    for _ in range(30):
        store = MaildirStore(tmp_path, watch="inotify")
        box = await store.open("alice")
        sub = store.subscribe("alice")
        await asyncio.sleep(0)
        sub.close()
        del box
        await store.close()
    assert fds() == before


@linux_only
@pytest.mark.parametrize("watch", ["inotify", "poll"])
async def test_file_dropped_into_new_by_another_program_is_published(
    tmp_path: Path, watch: str
) -> None:
    store = MaildirStore(tmp_path, watch=watch)  # type: ignore[arg-type]
    await store.ensure_user("alice")
    box = await store.open("alice")
    kind = PollWatcher if watch == "poll" else InotifyWatcher
    assert isinstance(store._watcher, kind)
    sub = store.subscribe("alice")
    await asyncio.sleep(0.05)  # the watches are added on the next turn of the loop

    def drop() -> None:  # as another MDA does: write in tmp/, rename into new/
        tmp = tmp_path / "alice" / "tmp" / "1700000000.M1P99.other"
        tmp.write_bytes(message(1))
        tmp.rename(tmp_path / "alice" / "new" / tmp.name)

    await asyncio.to_thread(drop)
    event = await asyncio.wait_for(sub.get(), 20)
    assert (event.user, event.folder, event.kind) == ("alice", "INBOX", EventKind.EXTERNAL)
    snap = await box.snapshot()
    assert len(snap.messages) == 1
    sub.close()
    await store.close()


@linux_only
async def test_our_own_changes_cause_no_rescan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[str] = []
    rescan = FolderIndexes.rescan

    async def counting(self: FolderIndexes, idx: FolderIndex) -> None:
        looked.append(idx.name)
        await rescan(self, idx)

    monkeypatch.setattr(FolderIndexes, "rescan", counting)
    store = MaildirStore(tmp_path, watch="inotify")
    await store.ensure_user("alice")
    box = await store.open("alice")
    sub = store.subscribe("alice")
    await asyncio.sleep(0.1)  # the first look, right after the watches are added
    looked.clear()
    for n in range(5):
        await store.deliver("alice", message(n))
    snap = await box.snapshot()
    await box.store_flags([snap.messages[0].uid], {SEEN}, FlagMode.ADD)
    await box.expunge([snap.messages[1].uid])
    await asyncio.sleep(0.2)  # let the events of those changes arrive and be weighed
    assert looked == [], "every event was one of ours, already in the index"

    def drop() -> None:
        tmp = tmp_path / "alice" / "tmp" / "1700000000.M2P99.other"
        tmp.write_bytes(message(9))
        tmp.rename(tmp_path / "alice" / "new" / tmp.name)

    await asyncio.to_thread(drop)
    while True:
        event = await asyncio.wait_for(sub.get(), 20)
        if event.kind is EventKind.EXTERNAL:
            break
    assert looked == ["INBOX"]
    sub.close()
    await store.close()


@linux_only
def test_an_instance_dropped_without_close_gives_its_descriptor_back() -> None:
    ino = inotify.Inotify()
    fd = ino.fileno()
    del ino
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


@linux_only
async def test_a_folder_another_process_creates_later_is_watched_once_opened(
    tmp_path: Path,
) -> None:
    store = MaildirStore(tmp_path, watch="inotify")
    await store.ensure_user("alice")
    await store.open("alice")
    sub = store.subscribe("alice")
    path = tmp_path / "alice" / ".Later"
    await asyncio.to_thread(layout.make_maildir, path, True)  # as Dovecot would
    box = await store.open("alice", "Later")
    await asyncio.sleep(0.05)  # the watches are added on the next turn of the loop

    def drop() -> None:
        tmp = path / "tmp" / "1700000000.M3P99.other"
        tmp.write_bytes(message(3))
        tmp.rename(path / "new" / tmp.name)

    await asyncio.to_thread(drop)
    while True:
        event = await asyncio.wait_for(sub.get(), 20)
        if event.kind is EventKind.EXTERNAL and event.folder == "Later":
            break
    assert len((await box.snapshot()).messages) == 1
    sub.close()
    await store.close()
