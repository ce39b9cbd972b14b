"""\\Recent claims in the store (``Mailbox.claim_recent``, ``store/recent.py``): each UID is
claimed once, by one session of one process, and the claim outlives the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from mailsrv.store.base import Store
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.recent import RECENT_FILE, RecentMark, parse
from tests.store.conftest import message


async def test_a_claim_is_answered_once(store: Store) -> None:
    await store.deliver("alice", message(1))
    await store.deliver("alice", message(2))
    box = await store.open("alice")
    v = (await box.snapshot()).uidvalidity
    assert box.claim_recent(v, 2, readonly=True) == 0  # EXAMINE / STATUS: look only
    assert box.claim_recent(v, 2, readonly=False) == 0  # the first SELECT: both recent
    other = await store.open("alice")
    assert other.claim_recent(v, 2, readonly=False) == 2  # a second one: none
    assert other.claim_recent(v, 3, readonly=False) == 2  # a new one: UID 3 is its
    assert box.claim_recent(v, 3, readonly=True) == 3
    assert box.claim_recent(v, 1, readonly=False) == 3  # never backwards


async def test_another_uidvalidity_starts_over(store: Store) -> None:
    await store.deliver("alice", message(1))
    box = await store.open("alice")
    v = (await box.snapshot()).uidvalidity
    assert box.claim_recent(v, 1, readonly=False) == 0
    bumped = await box.uidvalidity_bump()
    assert box.claim_recent(bumped, 1, readonly=False) == 0
    assert box.claim_recent(bumped, 1, readonly=False) == 1


async def test_folders_are_claimed_apart(store: Store) -> None:
    await store.create_folder("alice", "Work")
    inbox, work = await store.open("alice"), await store.open("alice", "Work")
    vi, vw = (await inbox.snapshot()).uidvalidity, (await work.snapshot()).uidvalidity
    assert inbox.claim_recent(vi, 5, readonly=False) == 0
    assert work.claim_recent(vw, 5, readonly=False) == 0


async def test_two_stores_on_one_root_share_the_claim_and_a_restart_keeps_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "mail"
    first, second = MaildirStore(root), MaildirStore(root)  # two processes, as it were
    await first.ensure_user("alice")
    await first.deliver("alice", message(1))
    a, b = await first.open("alice"), await second.open("alice")
    v = (await a.snapshot()).uidvalidity
    assert a.claim_recent(v, 1, readonly=False) == 0
    assert b.claim_recent(v, 1, readonly=False) == 1
    assert b.claim_recent(v, 2, readonly=False) == 1
    assert a.claim_recent(v, 2, readonly=False) == 2  # read again: above what ``a`` knew
    await first.close()
    await second.close()
    again = MaildirStore(root)
    try:
        box = await again.open("alice")
        assert box.claim_recent(v, 2, readonly=False) == 2
    finally:
        await again.close()
    assert parse((root / "alice" / RECENT_FILE).read_bytes()) == (v, 2)


def test_a_missing_or_damaged_file_reads_as_nothing_claimed(tmp_path: Path) -> None:
    assert RecentMark(tmp_path).claim(7, 3, readonly=True) == 0
    assert not (tmp_path / RECENT_FILE).exists()  # a look writes nothing
    (tmp_path / RECENT_FILE).write_bytes(b"garbage that is longer than the one line of the file\n")
    assert RecentMark(tmp_path).claim(7, 3, readonly=False) == 0
    assert parse((tmp_path / RECENT_FILE).read_bytes()) == (7, 3)  # the rest cut off
    assert RecentMark(tmp_path).claim(7, 3, readonly=False) == 3


def test_a_missing_folder_is_answered_from_memory(tmp_path: Path) -> None:
    mark = RecentMark(tmp_path / "gone")
    assert mark.claim(7, 3, readonly=False) == 0
    assert mark.claim(7, 3, readonly=False) == 3  # this process still claims once


_RACER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mailsrv.store.recent import RecentMark

    folder, top = Path(sys.argv[1]), int(sys.argv[2])
    mark = RecentMark(folder)
    sys.stdin.readline()  # everyone starts together
    mine = []
    for uid in range(1, top + 1):
        previous = mark.claim(42, uid, readonly=False)
        mine.extend(range(previous + 1, uid + 1))
    print(" ".join(map(str, mine)))
    """
)


def test_processes_racing_claim_each_uid_exactly_once(tmp_path: Path) -> None:
    top = 2000
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(tmp_path), str(top)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in racers:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    claimed: list[int] = []
    for p in racers:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        claimed.extend(int(u) for u in out.split())
    assert sorted(claimed) == list(range(1, top + 1))
    assert parse((tmp_path / RECENT_FILE).read_bytes()) == (42, top)
