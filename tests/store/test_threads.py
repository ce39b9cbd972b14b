"""The thread table behind THREADID (``store/threads.py``): how a message's thread is decided,
that it never changes, and that every process reading the file agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsrv.store import threads
from mailsrv.store.threads import MAX_ID, THREADS_FILE, ThreadTable


def test_a_message_joins_the_thread_of_its_own_id_else_its_oldest_known_parent() -> None:
    table = ThreadTable(None)
    assert table.assign([("a", ())]) == ["a"]  # a root seeds its thread
    assert table.assign([("b", ("a",)), ("c", ("a", "b"))]) == ["a", "a"]
    assert table.assign([("d", ("b",))]) == ["a"]  # only its parent named: still the thread
    assert table.assign([("x", ())]) == ["x"]
    # A reply that came before its parent seeds the thread with the parent's id...
    assert table.assign([("r2", ("r1",))]) == ["r1"]
    assert table.assign([("r1", ())]) == ["r1"]  # ... which the parent then joins
    # Naming two threads: the first named wins, and neither thread moves.
    assert table.assign([("j", ("x", "c"))]) == ["x"]
    assert table.known([("a", ()), ("c", ()), ("x", ())]) == ["a", "a", "x"]
    assert table.known([("new", ())]) is None
    # The root leaves (its ids stay), a copy asks again: the same answers.
    assert table.assign([("c", ("a", "b")), ("guid:1.M1.h", ())]) == ["a", "guid:1.M1.h"]


def test_the_file_is_shared_and_read_incrementally(tmp_path: Path) -> None:
    one, two = ThreadTable(tmp_path), ThreadTable(tmp_path)
    assert one.assign([("a", ()), ("b", ("a",))]) == ["a", "a"]
    assert two.known([("b", ())]) == ["a"]  # the other process reads what was appended
    assert two.assign([("c", ("b",))]) == ["a"]
    assert one.known([("c", ())]) == ["a"]
    text = (tmp_path / THREADS_FILE).read_text()
    assert text == "a\nb a\nc a\n"
    # A line half written by someone is read once it is whole; the first line for an id wins.
    with open(tmp_path / THREADS_FILE, "a") as f:
        f.write("a other\nd")
    assert one.known([("d", ())]) is None
    with open(tmp_path / THREADS_FILE, "a") as f:
        f.write(" x\n")
    assert one.known([("a", ()), ("d", ())]) == ["a", "x"]
    assert ThreadTable(tmp_path).known([("a", ()), ("d", ())]) == ["a", "x"]  # a restart


def test_odd_ids_are_recorded_as_a_hash(tmp_path: Path) -> None:
    table = ThreadTable(tmp_path)
    long_id = "x" * (MAX_ID + 1) + "@example.org"
    seeds = table.assign([("with blank@x", ()), ("m", (long_id,)), (long_id, ())])
    assert seeds[0].startswith("#") and seeds[1] == seeds[2] != seeds[0]  # opaque, but the same
    lines = (tmp_path / THREADS_FILE).read_text().splitlines()
    assert all(len(line) < 80 and line.count(" ") <= 1 for line in lines), lines
    assert ThreadTable(tmp_path).known([("m", ())]) is not None


def test_a_removed_file_is_forgotten(tmp_path: Path) -> None:
    table = ThreadTable(tmp_path)
    table.assign([("a", ())])
    (tmp_path / THREADS_FILE).unlink()  # the user was deleted
    assert table.known([("a", ())]) is None


def test_a_failed_append_decides_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = ThreadTable(tmp_path)

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(threads, "write_all", disk_full)
    with pytest.raises(OSError):
        table.assign([("b", ("a",))])
    assert table.known([("b", ())]) is None
