"""The dot-lock taken by hard-linking a private file, and appended uidlist records."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from mailsrv.store import uidlist
from mailsrv.store.base import StoreBusy
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.uidlist import LOCK_FILE, DotLock, parse_uidlist


def test_link_lock_reuses_one_inode(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_FILE
    inodes = set()
    for _ in range(3):
        with DotLock(tmp_path):
            st = os.stat(lock)
            assert st.st_nlink == 2  # the lock name and our private file
            assert lock.read_text() == f"{os.getpid()}:{uidlist._HOST}"
            inodes.add(st.st_ino)
        assert not lock.exists()
    assert len(inodes) == 1
    own = [n for n in os.listdir(tmp_path) if n.startswith(uidlist.OWN_LOCK_PREFIX)]
    assert own == [f"{uidlist.OWN_LOCK_PREFIX}{uidlist._HOST}.{os.getpid()}"]


def test_link_lock_respects_a_holder_and_clears_dead_files(tmp_path: Path) -> None:
    dead = tmp_path / f"{uidlist.OWN_LOCK_PREFIX}{uidlist._HOST}.999999999"
    dead.write_text("999999999:x")
    (tmp_path / LOCK_FILE).write_text("1:elsewhere")  # fresh, another host
    with pytest.raises(StoreBusy):
        DotLock(tmp_path).acquire(wait=0.05)
    assert (tmp_path / LOCK_FILE).read_text() == "1:elsewhere"
    assert not dead.exists()


def test_lock_falls_back_to_exclusive_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    with DotLock(tmp_path):
        assert os.stat(tmp_path / LOCK_FILE).st_nlink == 1
    assert not (tmp_path / LOCK_FILE).exists()


async def test_deliveries_append_to_the_uidlist(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    path = tmp_path / "alice" / "dovecot-uidlist"
    await store.deliver("alice", b"Subject: 0\r\n\r\nx\r\n")
    inode = os.stat(path).st_ino
    uids = [await store.deliver("alice", b"Subject: %d\r\n\r\nx\r\n" % n) for n in range(1, 5)]
    await store.close()
    assert uids == [2, 3, 4, 5]
    assert os.stat(path).st_ino == inode  # appended, never replaced
    ul = parse_uidlist(path.read_text())
    assert not ul.damaged and ul.next_free() == 6
    assert sorted(r.uid for r in ul.records.values()) == [1, 2, 3, 4, 5]


async def test_concurrent_deliveries_share_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailsrv.store import folder_ops

    batches: list[int] = []
    real = folder_ops.deliver_many

    def counting(index: object, jobs: list[folder_ops.Delivery]) -> object:
        batches.append(len(jobs))
        return real(index, jobs)  # type: ignore[arg-type]

    monkeypatch.setattr(folder_ops, "deliver_many", counting)
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    msgs = [b"Subject: %d\r\n\r\nbody %d\r\n" % (n, n) for n in range(30)]
    uids = await asyncio.gather(*(store.deliver("alice", m) for m in msgs))
    assert sorted(uids) == list(range(1, 31))
    assert sum(batches) == 30 and len(batches) < 30  # some went in together
    box = await store.open("alice")
    for uid, m in zip(uids, msgs, strict=True):
        assert await box.read(uid) == m
    await store.close()
    ul = parse_uidlist((tmp_path / "alice" / "dovecot-uidlist").read_text())
    assert not ul.damaged and sorted(r.uid for r in ul.records.values()) == list(range(1, 31))


async def test_a_failed_write_in_a_batch_spares_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailsrv.store import folder_ops

    real = folder_ops._write_tmp

    def picky(folder: str, job: folder_ops.Delivery) -> object:
        if b"bad" in job.wire:
            raise OSError("disk full")
        return real(folder, job)

    monkeypatch.setattr(folder_ops, "_write_tmp", picky)
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    msgs = [b"Subject: %s\r\n\r\nx\r\n" % w for w in (b"a", b"b", b"bad", b"c", b"d")]
    out = await asyncio.gather(*(store.deliver("alice", m) for m in msgs), return_exceptions=True)
    assert isinstance(out[2], OSError)
    good = [u for u in out if isinstance(u, int)]
    assert sorted(good) == [1, 2, 3, 4]
    assert os.listdir(tmp_path / "alice" / "tmp") == []
    snap = await (await store.open("alice")).snapshot()
    assert len(snap.messages) == 4
    await store.close()


def test_a_link_whose_reply_was_lost_still_takes_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over NFS a link() that the server made but whose reply was lost answers EEXIST when the
    client sends it again: the link count of the private file tells that the lock is ours."""
    real_link = os.link

    def lost_reply(src: str, dst: str) -> None:
        real_link(src, dst)
        raise FileExistsError(17, "File exists")

    monkeypatch.setattr(os, "link", lost_reply)
    with DotLock(tmp_path):
        st = os.stat(tmp_path / LOCK_FILE)
        assert st.st_nlink == 2
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}:{uidlist._HOST}"
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_of_another_host_is_not_taken_for_ours(tmp_path: Path) -> None:
    """The lock name already links another host's private file: EEXIST, and our own file
    keeps one name, so the lock is theirs."""
    theirs = tmp_path / f"{uidlist.OWN_LOCK_PREFIX}otherhost.4242"
    theirs.write_text("4242:otherhost")
    os.link(theirs, tmp_path / LOCK_FILE)
    with pytest.raises(StoreBusy):
        DotLock(tmp_path).acquire(wait=0.05)
    assert os.stat(theirs).st_nlink == 2
    own = tmp_path / f"{uidlist.OWN_LOCK_PREFIX}{uidlist._HOST}.{os.getpid()}"
    assert os.stat(own).st_nlink == 1


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    """Two threads share the private file, so the link count alone cannot tell them apart:
    they never hold the lock at once."""
    import threading

    inside = 0
    most = 0
    guard = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        for _ in range(200):
            with DotLock(tmp_path):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0002)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_thread_waiting_its_turn_gives_up_in_time(tmp_path: Path) -> None:
    import threading

    held = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with DotLock(tmp_path):
            held.set()
            done.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(StoreBusy, match="another thread"):
            DotLock(tmp_path).acquire(wait=0.05)
    finally:
        done.set()
        t.join()
    with DotLock(tmp_path):  # free again
        pass
