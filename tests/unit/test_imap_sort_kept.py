"""SORT orders and THREAD=REFERENCES, REFS and ORDEREDSUBJECT answers updated as mail comes
and goes equal the ones worked out afresh (``sort_kept``, ``thread_kept``), on random folders
and random changes."""

from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.imap.sort import SORT_KEYS, SortItem, SortKey, sort_item, sort_messages
from mailsrv.imap.sort_kept import KeptAnswers, KeptOrder, changes
from mailsrv.imap.sort_record import from_header
from mailsrv.imap.thread import ordered_subject, references, refs, thread_response
from mailsrv.imap.thread_kept import KeptOrderedSubject, KeptRefs, KeptThreads

#: Few ids, subjects and dates, so that references, loops, duplicates and ties are common.
IDS = [f"m{n}@x" for n in range(12)]
SUBJECTS = ["", "one", "Re: one", "two", "Fwd: two", "[list] one", "three (fwd)"]

header = st.fixed_dictionaries(
    {
        "own": st.none() | st.sampled_from(IDS),
        "refs": st.lists(st.sampled_from(IDS), max_size=4),
        "reply_to": st.none() | st.sampled_from(IDS),
        "subject": st.none() | st.sampled_from(SUBJECTS),
        "date": st.none() | st.integers(0, 5),
        "from_": st.sampled_from(["a@x", "b@x", "Bob <c@x>"]),
        "size": st.integers(1, 4),
    }
)
#: An arrival of some messages, or the expunge of some (by their index among those there).
step = st.one_of(
    st.tuples(st.just("arrive"), st.lists(header, min_size=1, max_size=4)),
    st.tuples(st.just("expunge"), st.lists(st.integers(0, 40), min_size=1, max_size=4)),
)


def make(uid: int, h: dict[str, object]) -> SortItem:
    lines = []
    if h["subject"] is not None:
        lines.append(f"Subject: {h['subject']}")
    if h["own"] is not None:
        lines.append(f"Message-ID: <{h['own']}>")
    refs = h["refs"]
    assert isinstance(refs, list)
    if refs:
        lines.append("References: " + " ".join(f"<{r}>" for r in refs))
    if h["reply_to"] is not None:
        lines.append(f"In-Reply-To: <{h['reply_to']}>")
    if h["date"] is not None:
        lines.append(f"Date: Tue, 14 Nov 2023 22:1{h['date']}:00 +0000")
    lines.append(f"From: {h['from_']}")
    record = from_header(("\r\n".join(lines) + "\r\n\r\n").encode())
    size = h["size"]
    assert isinstance(size, int)
    return sort_item(uid, 1_700_000_000.0 + 60 * (uid % 3), size, record)


def fresh_threads(items: list[SortItem], uid: bool) -> bytes:
    numbers = None if uid else {m.uid: n for n, m in enumerate(items, 1)}
    return thread_response(references(items), numbers)


@settings(max_examples=300, deadline=None)
@given(
    start=st.lists(header, max_size=12),
    steps=st.lists(step, min_size=1, max_size=8),
    keys=st.lists(st.tuples(st.sampled_from(SORT_KEYS), st.booleans()), min_size=1, max_size=3),
)
def test_updates_equal_a_fresh_answer(
    start: list[dict[str, object]],
    steps: list[tuple[str, list[object]]],
    keys: list[tuple[str, bool]],
) -> None:
    criteria = [SortKey(name, reverse) for name, reverse in keys]
    items = [make(uid, h) for uid, h in enumerate(start, 1)]
    next_uid = len(items) + 1
    by_uid = KeptThreads(items, None)
    by_seq = KeptThreads(items, {m.uid: n for n, m in enumerate(items, 1)})
    order = KeptOrder(items, criteria, {m.uid: n for n, m in enumerate(items, 1)})
    for kind, what in steps:
        if kind == "arrive":
            added = []
            for h in what:
                assert isinstance(h, dict)
                added.append(make(next_uid, h))
                next_uid += 1
            items = items + added
            numbers = {m.uid: n for n, m in enumerate(items, 1)}
            by_seq.update(added, (), numbers)
            gone: set[int] = set()
        else:
            gone = {items[i].uid for i in what if isinstance(i, int) and i < len(items)}
            items = [m for m in items if m.uid not in gone]
            added = []
            by_seq = KeptThreads(items, {m.uid: n for n, m in enumerate(items, 1)})
        by_uid.update(added, gone, None)
        seq_of = {m.uid: n for n, m in enumerate(items, 1)}
        order.update(added, gone, seq_of, renumbered=bool(gone))
        assert by_uid.answer() == fresh_threads(items, uid=True)
        assert by_seq.answer() == fresh_threads(items, uid=False)
        fresh = [m.uid for m in sort_messages(items, criteria)]
        assert [m.uid for m in order.ordered] == order.uids == fresh
        assert order.seqs == [seq_of[u] for u in fresh]
        for uid in (True, False):
            numbers = fresh if uid else [seq_of[u] for u in fresh]
            assert order.line(uid) == b"* SORT" + b"".join(b" %d" % n for n in numbers) + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(start=st.lists(header, max_size=12), steps=st.lists(step, min_size=1, max_size=8))
def test_refs_and_orderedsubject_updates_equal_a_fresh_answer(
    start: list[dict[str, object]], steps: list[tuple[str, list[object]]]
) -> None:
    items = [make(uid, h) for uid, h in enumerate(start, 1)]
    next_uid = len(items) + 1
    kinds = ((KeptRefs, refs), (KeptOrderedSubject, ordered_subject))
    kept = [(kind(items, None), fresh) for kind, fresh in kinds]
    for what_kind, what in steps:
        added: list[SortItem] = []
        gone: set[int] = set()
        if what_kind == "arrive":
            for h in what:
                assert isinstance(h, dict)
                added.append(make(next_uid, h))
                next_uid += 1
            items = items + added
        else:
            gone = {items[i].uid for i in what if isinstance(i, int) and i < len(items)}
            items = [m for m in items if m.uid not in gone]
        numbers = {m.uid: n for n, m in enumerate(items, 1)}
        for answer, fresh in kept:
            answer.update(added, gone, None)
            assert answer.answer() == thread_response(fresh(items))
        if not gone:  # sequence numbers: kept only while every message keeps its number
            for kind, fresh in kinds:
                by_seq = kind(items[: len(items) - len(added)], numbers)
                by_seq.update(added, (), numbers)
                assert by_seq.answer() == thread_response(fresh(items), numbers)


def key(pairs: list[tuple[int, int]]) -> bytes:
    return array("I", [n for p in pairs for n in p]).tobytes()


def test_changes_between_message_lists() -> None:
    old = key([(n, 10 * n) for n in range(1, 21)])
    arrived = key([(n, 10 * n) for n in range(1, 22)])
    assert changes(old, arrived, same_numbers=True) == ([210], set())
    expunged = key([(n, 10 * (n + 1)) for n in range(1, 21)])  # 10 went, 210 came
    assert changes(old, expunged, same_numbers=True) is None  # the others' numbers moved
    assert changes(old, expunged, same_numbers=False) == ([210], {10})
    # Most of the folder changed: worked out afresh.
    assert changes(old, key([(1, 700), (2, 800), (3, 900)]), same_numbers=False) is None


def test_kept_answers_keep_the_ones_used_last() -> None:
    kept = KeptAnswers(limit=2)
    kept.put(("a",), b"", 1)
    kept.put(("b",), b"", 2)
    kept.put(("a",), b"x", 3)  # used again: now the newest
    kept.put(("c",), b"", 4)
    assert kept.get(("b",)) is None
    assert kept.get(("a",)) == (b"x", 3)
    assert kept.get(("c",)) == (b"", 4)


def test_kept_answers_hold_a_bounded_number_of_messages() -> None:
    kept = KeptAnswers(limit=10, messages=5)
    kept.put(("a",), key([(1, 1), (2, 2), (3, 3)]), 1)
    kept.put(("b",), key([(1, 1), (2, 2)]), 2)
    kept.put(("c",), key([(1, 1)]), 3)  # 6 messages: the oldest goes
    assert kept.get(("a",)) is None
    assert kept.get(("b",)) is not None
    kept.put(("d",), key([(n, n) for n in range(1, 7)]), 4)  # more than all: not kept
    assert kept.get(("d",)) is None
    assert kept.get(("c",)) is not None
    taken = kept.take(("c",))
    assert taken is not None and taken[1] == 3
    assert kept.get(("c",)) is None
