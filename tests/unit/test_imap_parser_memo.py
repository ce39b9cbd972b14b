"""FETCH item lists remembered by their text parse exactly as a fresh parse does."""

from __future__ import annotations

from mailsrv.imap import parser as parser_mod
from mailsrv.imap.commands import Fetch, InvalidCommand
from mailsrv.imap.parser import parse_command


def test_remembered_items_equal_a_fresh_parse() -> None:
    parser_mod._ITEMS_DONE.clear()
    first = parse_command(b"a UID FETCH 5 (UID BODY.PEEK[1.MIME]<0.10>)\r\n")
    assert isinstance(first, Fetch)
    assert b"(UID BODY.PEEK[1.MIME]<0.10>)\r\n" in parser_mod._ITEMS_DONE
    again = parse_command(b"b FETCH 7:9 (UID BODY.PEEK[1.MIME]<0.10>)\r\n")
    assert isinstance(again, Fetch)
    assert (again.tag, again.uid, again.items) == ("b", False, first.items)
    assert again.sequence != first.sequence  # the set is parsed every time


def test_bad_or_literal_item_lists_are_not_remembered() -> None:
    parser_mod._ITEMS_DONE.clear()
    bad = parse_command(b"a FETCH 1 (FLAGS) (CHANGEDSINCE 4)\r\n")
    assert isinstance(bad, InvalidCommand)
    assert parser_mod._ITEMS_DONE == {}
    lit = parse_command(b"a FETCH 1 BODY.PEEK[HEADER.FIELDS ({7}\r\nSUBJECT)]\r\n")
    assert isinstance(lit, Fetch)
    assert parser_mod._ITEMS_DONE == {}
    # A remembered list still needs its sequence set checked.
    parse_command(b"a FETCH 1 FLAGS\r\n")
    assert isinstance(parse_command(b"a FETCH x FLAGS\r\n"), InvalidCommand)
