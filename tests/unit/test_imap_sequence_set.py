import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsrv.imap.sequence_set import MAX_NUMBER, SequenceSet


def test_parse_and_resolve():
    s = SequenceSet.parse("1:3,5,7:*")
    assert s.resolve(9) == [1, 2, 3, 5, 7, 8, 9]
    assert str(s) == "1:3,5,7:*"


def test_ranges_either_order_and_duplicates():
    assert SequenceSet.parse("5:2,3,4").resolve(10) == [2, 3, 4, 5]
    assert str(SequenceSet.parse("5:2")) == "2:5"
    assert str(SequenceSet.parse("*:4")) == "4:*"
    assert str(SequenceSet.parse("3:3")) == "3"


def test_star_is_max_value():
    assert SequenceSet.parse("*").resolve(4) == [4]
    # RFC 3501 §6.4.8: "UID 5:*" with highest UID 3 is "3:5" and includes 3
    assert SequenceSet.parse("5:*").resolve(3) == [3]
    assert SequenceSet.parse("10").resolve(3) == []


def test_empty_mailbox_star_matches_nothing():
    assert SequenceSet.parse("1:*").resolve(0) == []
    assert SequenceSet.parse("*").resolve(0) == []
    assert not SequenceSet.parse("*").contains(1, 0)


@pytest.mark.parametrize(
    "text", ["", "0", "1:0", "a", "1,,2", "1:", ":2", "1:2:3", "-1", "4294967296", "01", " 1"]
)
def test_invalid(text):
    with pytest.raises(ValueError):
        SequenceSet.parse(text)


def test_max_number_allowed():
    assert SequenceSet.parse(str(MAX_NUMBER)).ranges == ((MAX_NUMBER, MAX_NUMBER),)


def test_saved():
    s = SequenceSet.parse("$")
    assert s.uses_saved
    assert str(s) == "$"
    with pytest.raises(ValueError):
        s.resolve(3)
    with pytest.raises(ValueError):
        SequenceSet.parse("1,$")


def test_contains():
    s = SequenceSet.parse("2:4,10:*")
    assert [n for n in range(1, 13) if s.contains(n, 12)] == [2, 3, 4, 10, 11, 12]


def test_from_values():
    assert str(SequenceSet.from_values([5, 1, 2, 3, 3, 9, 10])) == "1:3,5,9:10"
    assert str(SequenceSet.from_values([])) == ""


def test_select_sparse_uids():
    uids = [3, 70, 71, 5000, 4_000_000_000]
    assert SequenceSet.parse("1:*").select(uids) == uids
    assert SequenceSet.parse("60:80,*").select(uids) == [70, 71, 4_000_000_000]
    assert SequenceSet.parse("1:2").select(uids) == []


def test_large_resolve_is_cheap():
    start = time.perf_counter()
    for _ in range(20):
        assert len(SequenceSet.parse("1:*").resolve(100_000)) == 100_000
    # generous bound: building 2M ints takes well under a second even on slow machines
    assert time.perf_counter() - start < 10


bounds = st.one_of(st.none(), st.integers(1, MAX_NUMBER))


@given(st.lists(st.tuples(bounds, bounds), min_size=1, max_size=6))
def test_round_trip(pairs):
    text = ",".join(
        ("*" if a is None else str(a)) + ":" + ("*" if b is None else str(b)) for a, b in pairs
    )
    s = SequenceSet.parse(text)
    assert SequenceSet.parse(str(s)) == s


@given(st.sets(st.integers(1, 500), max_size=60), st.integers(0, 520))
def test_from_values_resolves_back(values, top):
    s = SequenceSet.from_values(values)
    expected = sorted(v for v in values if v <= top)
    if values:
        assert s.resolve(top) == expected
        assert all(s.contains(v, top) == (v in values) for v in range(1, top + 1))
