"""The POP3 session dot-lock (``mailsrv.store.session_lock``) on a real directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from mailsrv.store.session_lock import LOCK_NAME, STALE_AFTER, acquire_dotlock


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    first = acquire_dotlock(tmp_path)
    assert first is not None
    assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}:{socket.gethostname()}\n"
    assert acquire_dotlock(tmp_path) is None  # this process holds it (another session)
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    second = acquire_dotlock(tmp_path)
    assert second is not None
    second.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left


def test_a_dead_holder_on_this_host_is_stale_at_once(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / LOCK_NAME).write_text(f"{dead.stdout.strip()}:{socket.gethostname()}\n")
    lock = acquire_dotlock(tmp_path)
    assert lock is not None
    assert (tmp_path / LOCK_NAME).read_text().startswith(f"{os.getpid()}:")
    lock.release()


def test_another_hosts_lock_holds_until_it_is_old(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    path.write_text("4242:other-host.example\n")
    assert acquire_dotlock(tmp_path) is None
    old = time.time() - STALE_AFTER - 10
    os.utime(path, (old, old))
    lock = acquire_dotlock(tmp_path)
    assert lock is not None
    lock.release()


def test_touch_keeps_a_held_lock_fresh(tmp_path: Path) -> None:
    lock = acquire_dotlock(tmp_path)
    assert lock is not None
    path = tmp_path / LOCK_NAME
    old = time.time() - STALE_AFTER + 5
    os.utime(path, (old, old))
    lock._touched = -1e9  # as if the last touch were long ago
    lock.touch()
    assert path.stat().st_mtime > old + 1
    lock.release()
