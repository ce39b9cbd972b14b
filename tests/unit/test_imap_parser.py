"""The IMAP lexer and command parser on hand-written input and random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsrv.imap.commands import (
    Append,
    AppendMessage,
    Authenticate,
    Capability,
    Copy,
    Create,
    Fetch,
    FetchItem,
    Id,
    InvalidCommand,
    ListCommand,
    Login,
    Noop,
    Search,
    Select,
    Status,
    StoreCommand,
    UidExpunge,
    command_name,
)
from mailsrv.imap.lexer import Lexer, ParseError
from mailsrv.imap.parser import parse_command, parse_date_time
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.strings import astring
from mailsrv.imap.tokens import Atom, SectionSpec
from mailsrv.store.base import FlagMode


def p(text: bytes) -> object:
    return parse_command(text + b"\r\n")


def test_simple_commands_are_case_insensitive() -> None:
    assert p(b"a1 noop") == Noop("a1")
    assert p(b"x CaPaBiLiTy") == Capability("x")


def test_login_with_atoms_quoted_and_literal() -> None:
    assert p(b"a LOGIN ann secret") == Login("a", b"ann", b"secret")
    assert p(b'a LOGIN "ann" "se cr\\"et"') == Login("a", b"ann", b'se cr"et')
    assert parse_command(b"a LOGIN {3}\r\nann {2+}\r\npw\r\n") == Login("a", b"ann", b"pw")


def test_authenticate_with_initial_response() -> None:
    assert p(b"a AUTHENTICATE plain AGFubgBwdw==") == Authenticate("a", "PLAIN", b"AGFubgBwdw==")
    assert p(b"a AUTHENTICATE LOGIN") == Authenticate("a", "LOGIN", None)


def test_select_examine_and_names() -> None:
    assert p(b"a SELECT inbox") == Select("a", b"inbox")
    assert p(b'a EXAMINE "Sent Items"') == Select("a", b"Sent Items", True, "EXAMINE")
    assert command_name(Select("a", b"x", True, "EXAMINE")) == "EXAMINE"


def test_create_special_use() -> None:
    assert p(b"a CREATE Junk2 (USE (\\Junk))") == Create("a", b"Junk2", ("\\Junk",))


def test_list_extended() -> None:
    cmd = p(b'a LIST (SUBSCRIBED) "" ("*" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))')
    assert cmd == ListCommand(
        "a", b"", (b"*", b"%"), ("SUBSCRIBED",), ("CHILDREN", "STATUS"), ("MESSAGES", "UNSEEN")
    )
    assert p(b'a LIST "" %/x]') == ListCommand("a", b"", (b"%/x]",))
    assert p(b"a LSUB x *") == ListCommand("a", b"x", (b"*",), name="LSUB")


def test_status_items_checked() -> None:
    assert p(b"a STATUS INBOX (messages SIZE)") == Status("a", b"INBOX", ("MESSAGES", "SIZE"))
    bad = p(b"a STATUS INBOX (BOGUS)")
    assert isinstance(bad, InvalidCommand) and bad.tag == "a"


def test_append_with_flags_date_and_literal8() -> None:
    cmd = parse_command(b'a APPEND Sent (\\Seen $x) "07-Feb-1994 21:52:25 -0800" ~{2}\r\nhi\r\n')
    msg = AppendMessage(("\\Seen", "$x"), 760686745.0, b"hi", binary=True)
    assert cmd == Append("a", b"Sent", (msg,))
    assert parse_date_time(b" 7-Feb-1994 21:52:25 +0000") == 760657945.0
    utf8 = parse_command(b"a APPEND INBOX UTF8 (~{2}\r\nhi)\r\n")
    assert utf8 == Append("a", b"INBOX", (AppendMessage((), None, b"hi", binary=True),))
    plain = p(b"a APPEND INBOX {2+}\r\nhi\r\n")
    assert plain == Append("a", b"INBOX", (AppendMessage((), None, b"hi"),))


def test_fetch_items_sections_and_partials() -> None:
    cmd = p(b"a UID FETCH 1:*,$ (uid body.peek[1.2.HEADER.FIELDS (from To)]<5.10> BINARY[3])")
    assert isinstance(cmd, InvalidCommand)  # "$" cannot be part of a larger set
    cmd = p(b"a UID FETCH 1:* (uid body.peek[1.2.HEADER.FIELDS (from To)]<5.10> BINARY[3])")
    assert cmd == Fetch(
        "a",
        True,
        SequenceSet.parse("1:*"),
        (
            FetchItem("UID"),
            FetchItem("BODY.PEEK", SectionSpec((1, 2), "HEADER.FIELDS", ("FROM", "TO")), (5, 10)),
            FetchItem("BINARY", SectionSpec((3,))),
        ),
    )
    assert command_name(cmd) == "UID FETCH"


def test_fetch_macros() -> None:
    cmd = p(b"a FETCH 2 FULL")
    assert isinstance(cmd, Fetch)
    assert [i.name for i in cmd.items] == [
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
    ]
    body = p(b"a FETCH 2 BODY[]")
    assert isinstance(body, Fetch) and body.items == (FetchItem("BODY", SectionSpec()),)


@pytest.mark.parametrize(
    "line",
    [
        b"a FETCH 1 (BODY[0])",
        b"a FETCH 1 (BODY[MIME])",
        b"a FETCH 1 (BINARY[1.TEXT])",
        b"a FETCH 1 (BODY[]<0.0>)",
        b"a FETCH 1 (FOO)",
        b"a FETCH 0:3 FLAGS",
        b"a FETCH 1 FLAGS extra",
        b"a STORE 1 FLAGS (\\Bogus)",
        b"a STORE 1 ++FLAGS (x)",
        b'a LOGIN "unterminated',
        b"a LOGIN ann",
        b"a FROB",
        b"a UID FROB 1",
        b"a APPEND INBOX (\\Seen) NOTLITERAL",
        b'a APPEND INBOX "31-Foo-2020 00:00:00 +0000" {1}\r\nx',
        b"a SEARCH",
    ],
)
def test_invalid_commands_keep_the_tag(line: bytes) -> None:
    cmd = p(line)
    assert isinstance(cmd, InvalidCommand)
    assert cmd.tag == "a"
    assert cmd.reason


def test_missing_tag() -> None:
    assert p(b"") == InvalidCommand("*", "Missing or invalid tag")
    assert isinstance(p(b"(x NOOP"), InvalidCommand)


def test_store_forms() -> None:
    assert p(b"a STORE 1:3 +FLAGS.SILENT (\\seen foo)") == StoreCommand(
        "a", False, SequenceSet.parse("1:3"), FlagMode.ADD, True, ("\\Seen", "foo")
    )
    assert p(b"a UID STORE 5 -FLAGS \\Deleted \\Flagged") == StoreCommand(
        "a", True, SequenceSet.parse("5"), FlagMode.REMOVE, False, ("\\Deleted", "\\Flagged")
    )


def test_copy_move_expunge_search_id() -> None:
    assert p(b"a UID MOVE 1:2 Trash") == Copy(
        "a", True, SequenceSet.parse("1:2"), b"Trash", True, "MOVE"
    )
    assert p(b"a UID EXPUNGE 3") == UidExpunge("a", SequenceSet.parse("3"))
    search = p(b'a SEARCH CHARSET UTF-8 OR (SEEN FLAGGED) SUBJECT "x y"')
    assert search == Search(
        "a",
        False,
        (
            Atom("CHARSET"),
            Atom("UTF-8"),
            Atom("OR"),
            [Atom("SEEN"), Atom("FLAGGED")],
            Atom("SUBJECT"),
            b"x y",
        ),
    )
    assert p(b'a ID ("name" "x" "os" NIL)') == Id("a", ((b"name", b"x"), (b"os", None)))
    assert p(b"a ID NIL") == Id("a", None)


def test_lexer_nesting_limit() -> None:
    with pytest.raises(ParseError):
        Lexer(b"(" * 100 + b")" * 100).token()


# -- property tests ------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = parse_command(data)
    assert result is not None


tags = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789.", min_size=1, max_size=8)
names = st.binary(min_size=1, max_size=30).filter(lambda b: b"\0" not in b)


def serialize_login(cmd: Login) -> bytes:
    return b"%s LOGIN %s %s\r\n" % (cmd.tag.encode(), astring(cmd.user), astring(cmd.password))


@given(tags, names, names)
def test_login_round_trip(tag: str, user: bytes, password: bytes) -> None:
    cmd = Login(tag, user, password)
    assert parse_command(serialize_login(cmd)) == cmd


@given(tags, names, st.booleans())
def test_select_round_trip(tag: str, mailbox: bytes, readonly: bool) -> None:
    cmd = Select(tag, mailbox, readonly, "EXAMINE" if readonly else "SELECT")
    line = b"%s %s %s\r\n" % (tag.encode(), cmd.name.encode(), astring(mailbox))
    assert parse_command(line) == cmd


@given(
    tags,
    st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=10),
    st.booleans(),
    st.lists(st.sampled_from(["UID", "FLAGS", "ENVELOPE", "RFC822.SIZE"]), min_size=1, unique=True),
)
def test_fetch_round_trip(tag: str, values: list[int], uid: bool, items: list[str]) -> None:
    seq = SequenceSet.from_values(values)
    cmd = Fetch(tag, uid, seq, tuple(FetchItem(i) for i in items))
    line = b"%s %sFETCH %s (%s)\r\n" % (
        tag.encode(),
        b"UID " if uid else b"",
        str(seq).encode(),
        " ".join(items).encode(),
    )
    assert parse_command(line) == cmd
