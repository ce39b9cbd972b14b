"""The workers' shared admission table (``mailsrv.workers.shared_peers``), across a fork."""

from __future__ import annotations

import os
import time

import pytest

from mailsrv.workers.shared_peers import SharedPeerTable


@pytest.fixture
def table():
    t = SharedPeerTable(2)
    yield t
    t.close()


def test_counts_sum_over_the_slots(table) -> None:
    a, b = table.counts(0), table.counts(1)
    a.add("192.0.2.1", 1)
    b.add("192.0.2.1", 1)
    b.add("192.0.2.2", 1)
    assert a.count("192.0.2.1") == 2 and b.count("192.0.2.1") == 2
    assert a.total() == 3 and a.count("192.0.2.3") == 0
    b.add("192.0.2.1", -1)
    assert a.count("192.0.2.1") == 1


def test_a_dead_workers_slot_is_cleared(table) -> None:
    table.counts(1).add("192.0.2.1", 5)
    table.clear_slot(1)
    assert table.counts(0).count("192.0.2.1") == 0 and table.counts(0).total() == 0


def test_a_forked_worker_writes_what_the_parent_reads(table) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        table.counts(1).add("198.51.100.7", 3)
        table.failures().record("198.51.100.7", time.monotonic(), 1, 60.0)
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.counts(0).count("198.51.100.7") == 3
    assert table.failures().blocked("198.51.100.7", time.monotonic())


def test_failures_block_at_the_limit_and_clear(table) -> None:
    f = table.failures()
    now = time.monotonic()
    assert f.record("203.0.113.9", now, 3, 60.0) == 1
    assert f.record("203.0.113.9", now, 3, 60.0) == 2
    assert not f.blocked("203.0.113.9", now)
    assert f.record("203.0.113.9", now, 3, 60.0) == 3
    assert f.blocked("203.0.113.9", now) and not f.blocked("203.0.113.8", now)
    assert not f.blocked("203.0.113.9", now + 61)
    f.clear("203.0.113.9")
    assert f.record("203.0.113.9", now, 3, 60.0) == 1
