"""The message cache's batch reads/writes and its in-memory memo agree with single reads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailsrv.store import cache as cache_mod
from mailsrv.store.cache import CACHE_FILE, MessageCache


def test_get_many_matches_get(tmp_path: Path) -> None:
    c = MessageCache(tmp_path)
    assert c.get_many(["a"], {"k"}) == {}  # no file yet: nothing, and no file created
    assert not (tmp_path / CACHE_FILE).exists()
    rows = [(f"m{i}", k, f"{k}-{i}".encode()) for i in range(1200) for k in ("env", "bs")]
    c.put_many(rows)
    c.commit()
    bases = [f"m{i}" for i in range(0, 1300, 3)]  # some beyond what exists
    got = c.get_many(bases, {"env"})
    assert got == {(b, "env"): c.get(b, "env") for b in bases if int(b[1:]) < 1200}
    assert all(key == "env" for _, key in got)
    both = c.get_many(["m5"], {"env", "bs"})
    assert both == {("m5", "env"): b"env-5", ("m5", "bs"): b"bs-5"}
    c.close()


def test_values_survive_reopen_and_forget(tmp_path: Path) -> None:
    c = MessageCache(tmp_path)
    c.put_many([("x", "env", b"E"), ("y", "env", b"F")])
    c.put("x", "bs", b"B")
    c.close()
    d = MessageCache(tmp_path)
    assert d.get_many(["x", "y"], {"env", "bs"}) == {
        ("x", "env"): b"E",
        ("x", "bs"): b"B",
        ("y", "env"): b"F",
    }
    d.forget(["x"])
    assert d.get("x", "env") is None  # gone from the memo and from SQLite
    assert d.get_many(["x", "y"], {"env"}) == {("y", "env"): b"F"}
    d.close()
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        assert db.execute("SELECT base FROM cache").fetchall() == [("y",)]


def test_memo_serves_repeat_reads_without_sqlite(tmp_path: Path) -> None:
    c = MessageCache(tmp_path)
    c.put_many([("x", "env", b"E")])
    c.commit()
    assert c._db is not None
    c._db.close()  # any SQLite access would now raise ProgrammingError
    assert c.get("x", "env") == b"E"
    assert c.get_many(["x"], {"env"}) == {("x", "env"): b"E"}
    c._db = None


def test_memo_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "MEMO_BYTES", 10)
    c = MessageCache(tmp_path)
    c.put_many([("a", "k", b"12345678"), ("b", "k", b"12345678")])
    assert c._memo_bytes == 8 and "b" not in c._memo  # over budget: only in SQLite
    assert c.get_many(["a", "b"], {"k"}) == {("a", "k"): b"12345678", ("b", "k"): b"12345678"}
    c.put("a", "k", b"1")  # a replaced value updates the count
    assert c._memo_bytes == 1
    assert c.get("a", "k") == b"1"
    c.close()


def test_each_cluster_host_has_a_cache_file_of_its_own(tmp_path: Path) -> None:
    """SQLite's WAL needs the memory of one machine: hosts sharing a root over a network
    filesystem never open one another's cache."""
    from mailsrv.store.cache import cache_file_for

    assert cache_file_for(None) == CACHE_FILE
    assert cache_file_for("10.0.0.2") == "mailsrv-cache.10.0.0.2.sqlite"
    assert cache_file_for("fd00::2") == "mailsrv-cache.fd00--2.sqlite"
    a = MessageCache(tmp_path, cache_file_for("10.0.0.2"))
    a.put("base", "env", b"x")
    a.commit()
    assert (tmp_path / "mailsrv-cache.10.0.0.2.sqlite").exists()
    assert not (tmp_path / CACHE_FILE).exists()
    a.close()


async def test_a_write_waits_for_nobody_while_another_process_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers share one cache file: while another writer holds SQLite's write lock, rows are
    kept queued (and served from memory), the event loop is not held, and they are written once
    the lock is free."""
    import asyncio

    monkeypatch.setattr(cache_mod, "RETRY_AFTER", 0.01)
    c = MessageCache(tmp_path)
    c.put("seed", "k", b"0")  # creates the file
    await asyncio.sleep(0)
    other = sqlite3.connect(tmp_path / CACHE_FILE, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    c.put_many([("x", "env", b"E"), ("y", "env", b"F")])
    for _ in range(5):
        await asyncio.sleep(0.02)  # several tries, each refused
    assert c._queued == 2
    assert c.get("x", "env") == b"E"  # from memory meanwhile
    assert other.execute("SELECT count(*) FROM cache").fetchone() == (1,)
    other.execute("ROLLBACK")
    for _ in range(200):
        if not c._queued:
            break
        await asyncio.sleep(0.01)
    assert c._queued == 0
    rows = other.execute("SELECT base, value FROM cache ORDER BY base").fetchall()
    assert rows == [("seed", b"0"), ("x", b"E"), ("y", b"F")]
    other.close()
    c.close()
