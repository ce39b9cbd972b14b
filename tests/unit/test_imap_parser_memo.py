"""FETCH item lists remembered by their text parse exactly as a fresh parse does."""

from __future__ import annotations

from mailsrv.imap.commands import Fetch, FetchItem, InvalidCommand
from mailsrv.imap.parser import parse_command


def test_remembered_items_equal_a_fresh_parse() -> None:
    memo: dict[bytes, tuple[FetchItem, ...]] = {}
    first = parse_command(b"a UID FETCH 5 (UID BODY.PEEK[1.MIME]<0.10>)\r\n", memo)
    assert isinstance(first, Fetch)
    assert b"(UID BODY.PEEK[1.MIME]<0.10>)\r\n" in memo
    again = parse_command(b"b FETCH 7:9 (UID BODY.PEEK[1.MIME]<0.10>)\r\n", memo)
    assert isinstance(again, Fetch)
    assert (again.tag, again.uid, again.items) == ("b", False, first.items)
    assert again.items is first.items  # taken from the memo
    assert again.sequence != first.sequence  # the set is parsed every time


def test_bad_or_literal_item_lists_are_not_remembered() -> None:
    memo: dict[bytes, tuple[FetchItem, ...]] = {}
    bad = parse_command(b"a FETCH 1 (FLAGS) (CHANGEDSINCE x)\r\n", memo)
    assert isinstance(bad, InvalidCommand)
    assert memo == {}
    # Modifiers are parsed every time: the list before them is not remembered either.
    mod = parse_command(b"a FETCH 1 (FLAGS) (CHANGEDSINCE 4)\r\n", memo)
    assert isinstance(mod, Fetch) and mod.changedsince == 4
    assert memo == {}
    lit = parse_command(b"a FETCH 1 BODY.PEEK[HEADER.FIELDS ({7}\r\nSUBJECT)]\r\n", memo)
    assert isinstance(lit, Fetch)
    assert memo == {}
    # A remembered list still needs its sequence set checked.
    parse_command(b"a FETCH 1 FLAGS\r\n", memo)
    assert isinstance(parse_command(b"a FETCH x FLAGS\r\n", memo), InvalidCommand)


def test_without_a_memo_nothing_is_remembered() -> None:
    first = parse_command(b"a FETCH 1 (UID FLAGS)\r\n")
    again = parse_command(b"a FETCH 1 (UID FLAGS)\r\n")
    assert isinstance(first, Fetch) and isinstance(again, Fetch)
    assert first == again and first.items is not again.items
