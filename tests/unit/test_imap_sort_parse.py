"""SORT, THREAD and CANCELUPDATE parsing (RFC 5256, RFC 5267) and the RETURN options of SEARCH
and SORT (RFC 4731, RFC 5267, RFC 9394): whole, byte by byte, and with data behind."""

from __future__ import annotations

import pytest

from mailsrv.imap.commands import CancelUpdate, InvalidCommand, Sort, Thread, command_name
from mailsrv.imap.core import NEED_DATA, ImapCore
from mailsrv.imap.esearch_results import (
    Partial,
    ReturnError,
    ReturnOptions,
    ordered_set,
    parse_partial,
    parse_return_options,
    result_items,
)
from mailsrv.imap.parser import parse_command
from mailsrv.imap.search import parse_search
from mailsrv.imap.search_keys import SearchError
from mailsrv.imap.sort import SortError, SortKey, parse_criteria
from mailsrv.imap.tokens import Atom


def events(data: bytes) -> list[object]:
    core = ImapCore(max_line=1000, max_append=10_000)
    core.logged_in()
    core.selected()
    core.receive_data(data)
    out: list[object] = []
    while (ev := core.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def chunked(data: bytes) -> list[object]:
    core = ImapCore(max_line=1000, max_append=10_000)
    core.logged_in()
    core.selected()
    out: list[object] = []
    for i in range(len(data)):
        core.receive_data(data[i : i + 1])
        while (ev := core.next_event()) is not NEED_DATA:
            out.append(ev)
    return out


SORT_LINE = (
    b"a UID SORT RETURN (MIN PARTIAL 1:10) (REVERSE DATE subject) UTF-8 FROM {3+}\r\nann\r\n"
)
EXPECTED_SORT = Sort(
    "a",
    True,
    (
        Atom("RETURN"),
        [Atom("MIN"), Atom("PARTIAL"), Atom("1:10")],
        [Atom("REVERSE"), Atom("DATE"), Atom("subject")],
        Atom("UTF-8"),
        Atom("FROM"),
        b"ann",
    ),
)


def test_sort_whole_byte_by_byte_and_followed_by_more() -> None:
    assert events(SORT_LINE) == [EXPECTED_SORT]
    assert chunked(SORT_LINE) == [EXPECTED_SORT]
    assert events(SORT_LINE + b'b THREAD refs US-ASCII ALL\r\nc CANCELUPDATE "a" "x y"\r\n') == [
        EXPECTED_SORT,
        Thread("b", False, (Atom("refs"), Atom("US-ASCII"), Atom("ALL"))),
        CancelUpdate("c", ("a", "x y")),
    ]
    assert command_name(EXPECTED_SORT) == "UID SORT"
    assert command_name(Thread("t", True, ())) == "UID THREAD"


@pytest.mark.parametrize(
    "line", [b"a SORT", b"a THREAD", b"a CANCELUPDATE", b'a UID CANCELUPDATE "x"']
)
def test_incomplete_commands_are_invalid(line: bytes) -> None:
    assert isinstance(parse_command(line + b"\r\n"), InvalidCommand)


def test_criteria() -> None:
    items = [Atom("reverse"), Atom("ARRIVAL"), Atom("DisplayFrom"), Atom("SIZE")]
    assert parse_criteria(items) == (
        SortKey("ARRIVAL", True),
        SortKey("DISPLAYFROM"),
        SortKey("SIZE"),
    )


@pytest.mark.parametrize(
    "items",
    [
        [],
        [Atom("FOO")],
        [Atom("REVERSE")],
        [Atom("REVERSE"), Atom("REVERSE"), Atom("DATE")],
        [b"DATE"],
        [[Atom("DATE")]],
        Atom("DATE"),
    ],
)
def test_bad_criteria(items: object) -> None:
    with pytest.raises(SortError):
        parse_criteria(items)  # type: ignore[arg-type]


def test_return_options() -> None:
    assert parse_return_options([]) == ReturnOptions(("ALL",))
    assert parse_return_options([Atom("CONTEXT")]) == ReturnOptions(("CONTEXT", "ALL"))
    assert parse_return_options([Atom("update")]) == ReturnOptions(("UPDATE",))
    assert parse_return_options([Atom("count"), Atom("partial"), Atom("4:2")]) == ReturnOptions(
        ("COUNT", "PARTIAL"), Partial(2, 4)
    )


@pytest.mark.parametrize(
    "items",
    [
        [Atom("PARTIAL")],
        [Atom("PARTIAL"), Atom("1")],
        [Atom("PARTIAL"), Atom("1:*")],
        [Atom("PARTIAL"), Atom("*:1")],
        [Atom("PARTIAL"), Atom("0:3")],
        [Atom("PARTIAL"), Atom("-1:3")],
        [Atom("PARTIAL"), Atom("1:4294967296")],
        [Atom("PARTIAL"), Atom("1:2"), Atom("PARTIAL"), Atom("3:4")],
        [Atom("PARTIAL"), Atom("1:2"), Atom("ALL")],
        [Atom("NOPE")],
        [b"ALL"],
    ],
)
def test_bad_return_options(items: list[object]) -> None:
    with pytest.raises(ReturnError):
        parse_return_options(items)  # type: ignore[arg-type]


def test_partial_ranges() -> None:
    results = [10, 20, 30, 40, 50]
    assert parse_partial(Atom("2:4")).select(results) == [20, 30, 40]
    assert parse_partial(Atom("4:2")) == Partial(2, 4)
    assert parse_partial(Atom("1:9")).select(results) == results
    assert list(parse_partial(Atom("6:9")).select(results)) == []
    last_two = parse_partial(Atom("-2:-1"))
    assert last_two == Partial(-1, -2) and last_two.text == "-1:-2"
    assert last_two.select(results) == [40, 50]
    assert parse_partial(Atom("-9:-4")).select(results) == [10, 20]
    assert list(parse_partial(Atom("-9:-6")).select(results)) == []


def test_result_items_in_sort_order() -> None:
    order = [5, 3, 4, 2, 1]
    assert ordered_set(order) == "5,3:4,2,1"
    returns = ReturnOptions(("MIN", "MAX", "ALL", "COUNT"))
    assert result_items(returns, order) == b"MIN 5 MAX 1 ALL 5,3:4,2,1 COUNT 5"
    partial = ReturnOptions(("COUNT", "PARTIAL"), Partial(2, 4))
    assert result_items(partial, order) == b"PARTIAL (2:4 3:4,2) COUNT 5"
    assert result_items(ReturnOptions(("PARTIAL",), Partial(6, 6)), order) == b"PARTIAL (6:6 NIL)"
    assert result_items(returns, []) == b"COUNT 0"


def test_search_return_partial_and_update() -> None:
    program = parse_search([Atom("RETURN"), [Atom("PARTIAL"), Atom("1:3")], Atom("ALL")])
    assert program.partial == Partial(1, 3) and program.returns == ("PARTIAL",)
    program = parse_search([Atom("RETURN"), [Atom("UPDATE"), Atom("ALL")], Atom("SEEN")])
    assert program.returns == ("UPDATE", "ALL")
    with pytest.raises(SearchError):
        parse_search([Atom("RETURN"), [Atom("PARTIAL"), Atom("1:*")], Atom("ALL")])
