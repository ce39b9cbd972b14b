"""The workers' shared fault table (``mailsrv.workers.shared_faults``): ``times`` counts once
over every worker, across forks and under races; a replaced console finds its faults there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from mailsrv.faults import FaultInjector
from mailsrv.web.api_faults import add_fault, fault_body, fault_dict
from mailsrv.web.api_request import ApiError
from mailsrv.workers.console_link import arm_copy
from mailsrv.workers.shared_faults import MAX_BODY, SharedFaultTable, SharedHits


@pytest.fixture
def table() -> Iterator[SharedFaultTable]:
    t = SharedFaultTable(slots=8)
    yield t
    t.close()


def console(table: SharedFaultTable) -> FaultInjector:
    """Worker 0's injector: each fault it adds gets its slot in the table."""
    faults = FaultInjector()
    faults.share = lambda f: table.arm(f.id, f.times, fault_body(f))
    return faults


def other_worker(table: SharedFaultTable, console: FaultInjector) -> FaultInjector:
    """Another worker's injector, told of each of the console's faults."""
    faults = FaultInjector()
    for fault in console.active:
        shared = table.handle(fault.id)
        assert shared is not None
        arm_copy(faults, fault.id, fault_body(fault), shared)
    return faults


def test_times_count_once_over_two_injectors(table: SharedFaultTable) -> None:
    zero = console(table)
    fault = zero.fail("pop3", "STAT", times=3)
    one = other_worker(table, zero)
    assert one.active[0].id == fault.id
    fired = [zero.check("pop3", "STAT"), one.check("pop3", "STAT"), one.check("pop3", "STAT")]
    assert all(fired) and fired[2] is not None and fired[2].hits == 3
    assert zero.check("pop3", "STAT") is None  # spent in the other worker: gone here too
    assert one.check("pop3", "STAT") is None
    assert zero.active == [] and table.armed() == []


def test_the_console_lists_every_workers_hits(table: SharedFaultTable) -> None:
    zero = console(table)
    zero.fail("imap", "NOOP", times=None)
    one = other_worker(table, zero)
    for _ in range(4):
        one.check("imap", "NOOP")
    assert fault_dict(zero.active[0])["hits"] == 4
    assert table.armed()[0].hits == 4


def test_a_fault_withdrawn_by_the_console_is_gone_everywhere_at_once(
    table: SharedFaultTable,
) -> None:
    zero = console(table)
    fault = zero.fail("smtp", "RCPT", times=None)
    one = other_worker(table, zero)
    assert zero.remove_id(fault.id)
    table.remove(fault.id)  # what the console link does with the API's DELETE
    assert one.check("smtp", "RCPT") is None  # before the link's message arrives
    assert not zero.remove_id(fault.id)
    zero.fail("smtp", "DATA", times=None)
    table.clear()
    assert zero.active == [] and zero.check("smtp", "DATA") is None


def test_a_spent_fault_is_not_found_by_id(table: SharedFaultTable) -> None:
    zero = console(table)
    fault = zero.fail("pop3", "LIST", times=1)
    zero.check("pop3", "LIST")
    assert table.handle(fault.id) is None
    assert not zero.remove_id(fault.id)


def test_a_freed_slot_serves_a_new_fault_and_old_handles_miss(table: SharedFaultTable) -> None:
    old = table.arm(1, 1, {"a": 1})
    assert old.claim() == 1 and old.hits() is None  # spent: the slot is free
    new = table.arm(2, None, {"b": 2})
    assert new.index == old.index
    assert old.claim() is None and new.claim() == 1


def test_a_full_table_and_a_long_body_refuse_the_fault(table: SharedFaultTable) -> None:
    for i in range(table.slots):
        table.arm(i + 1, None, {})
    with pytest.raises(ValueError, match="at most 8 faults"):
        table.arm(99, None, {})
    table.remove(3)
    table.arm(100, None, {})
    with pytest.raises(ValueError, match=f"{MAX_BODY} bytes"):
        SharedFaultTable(slots=1).arm(1, None, {"reply": "x" * MAX_BODY})


def test_a_full_table_is_a_clear_error_from_the_injector(table: SharedFaultTable) -> None:
    zero = console(table)
    for _ in range(table.slots):
        zero.fail("imap", "NOOP", times=None)
    with pytest.raises(ValueError, match="at most 8 faults"):
        zero.fail("imap", "NOOP", times=None)
    assert len(zero.active) == table.slots


def test_a_replaced_console_gets_the_faults_and_ids_back(table: SharedFaultTable) -> None:
    zero = console(table)
    zero.fail("imap", "FETCH", "NO [UNAVAILABLE] later", times=2, match="inbox")
    kept = zero.delay("smtp", "DATA", 0.5, times=None, user="bob")
    zero.remove_id(1)
    table.remove(1)
    one = other_worker(table, zero)
    one.check("smtp", "DATA", "", "bob")
    # worker 0 dies; its replacement starts from the table alone
    again = FaultInjector()
    again.skip_ids(table.last_id)
    for armed in table.armed():
        shared = table.handle(armed.id)
        assert isinstance(shared, SharedHits)
        arm_copy(again, armed.id, armed.body, shared)
    [restored] = again.active
    assert fault_dict(restored) == fault_dict(kept) | {"hits": 1}
    again.share = lambda f: table.arm(f.id, f.times, fault_body(f))
    assert again.fail("pop3", "STAT").id == kept.id + 1  # no id given twice


@pytest.mark.parametrize(
    "body",
    [
        {"protocol": "imap", "command": "FETCH", "action": "fail", "reply": "NO x", "times": 2},
        {"protocol": "smtp", "command": "RCPT", "action": "fail", "match": "*@x.org*"},
        {"protocol": "imap", "command": "*", "action": "delay", "seconds": 1.5, "user": "al"},
        {"protocol": "pop3", "command": "RETR", "action": "drop", "after_bytes": 7},
        {"protocol": "pop3", "command": "RETR", "action": "drop", "times": None},
        {"protocol": "imap", "action": "strip-starttls", "user": "bob"},
    ],
)
def test_fault_body_arms_the_same_fault_again(body: dict[str, Any]) -> None:
    first = add_fault(FaultInjector(), body)
    again = add_fault(FaultInjector(), fault_body(first))
    assert fault_dict(again) == fault_dict(first)


def test_tls_fault_body_arms_the_same_fault_again() -> None:
    faults = FaultInjector()
    faults.prepare_certificate = lambda name: None
    body = {"protocol": "imaps", "action": "tls", "certificate": "expired", "times": 2}
    first = add_fault(faults, body)
    assert fault_dict(add_fault(faults, fault_body(first))) == fault_dict(first) | {"id": 2}


def test_racing_workers_fire_exactly_times_in_total(table: SharedFaultTable) -> None:
    """Four forked workers claim one fault as fast as they can, all at once: exactly
    ``times`` claims are granted, and no two get the same hit number."""
    times, workers, tries = 200, 4, 150
    hits = table.arm(7, times, {})
    start_r, start_w = os.pipe()
    results = []
    children = []
    for _ in range(workers):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.read(start_r, 1)  # all start together
            granted = [n for _ in range(tries) if (n := hits.claim()) is not None]
            os.write(write_fd, ",".join(map(str, granted)).encode())
            os._exit(0)
        os.close(write_fd)
        children.append(pid)
        results.append(read_fd)
    os.write(start_w, b"x" * workers)
    granted: list[int] = []
    for pid, read_fd in zip(children, results, strict=True):
        with os.fdopen(read_fd, "rb") as pipe:
            text = pipe.read().decode()
        granted += [int(n) for n in text.split(",") if n]
        os.waitpid(pid, 0)
    os.close(start_r)
    os.close(start_w)
    assert sorted(granted) == list(range(1, times + 1))
    assert table.handle(7) is None


@pytest.mark.parametrize(
    "body",
    [
        {"protocol": "imap", "command": "NOOP", "action": "fail"},
        {"protocol": "imap", "action": "strip-starttls"},
        {"protocol": "imaps", "action": "tls", "certificate": "expired"},
    ],
    ids=["fail", "strip-starttls", "tls"],
)
def test_the_api_answers_a_full_table_with_a_400(body: dict[str, Any]) -> None:
    table = SharedFaultTable(slots=1)
    try:
        zero = console(table)
        zero.prepare_certificate = lambda name: None
        zero.fail("pop3", "STAT", times=None)
        with pytest.raises(ApiError) as refused:
            add_fault(zero, body)
        assert refused.value.status == 400 and "at most 1 faults" in str(refused.value)
    finally:
        table.close()
