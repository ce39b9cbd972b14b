"""IMAP parser, core and session under hostile input (tests/fuzz.py properties, few examples)."""

from __future__ import annotations

from tests.fuzz import (
    BY_NAME,
    check_imap_core,
    check_imap_parser,
    check_imap_session,
    property_test,
)


def test_imap_parser_never_raises() -> None:
    property_test(BY_NAME["imap-parser"], 300)()


def test_imap_core_same_commands_whole_or_in_pieces() -> None:
    property_test(BY_NAME["imap-core"], 200)()


def test_imap_session_every_tagged_command_gets_exactly_one_tagged_reply() -> None:
    property_test(BY_NAME["imap-session"], 60)()


def test_imap_parser_deep_nesting_nul_and_huge_numbers() -> None:
    for data in (
        b"a FETCH 1 " + b"(" * 5000 + b"\r\n",
        b"a SEARCH " + b"(" * 3000 + b"ALL" + b")" * 3000 + b"\r\n",
        b"a SEARCH " + b"NOT " * 5000 + b"ALL\r\n",
        b"a SEARCH " + b"OR ALL " * 3000 + b"ALL\r\n",
        b"a FETCH 99999999999999999999:* FLAGS\r\n",
        b"a FETCH 1 BODY[" + b"1." * 2000 + b"1]\r\n",
        b"a FETCH 1 BODY[]<99999999999999999999.99999999999999999999>\r\n",
        b"a LOGIN \x00 \x00\r\n",
        b"a SELECT \xff\xfe\r\n",
        b"a APPEND INBOX {99999999999999999999}\r\n",
        b"\r\n",
        b"* NOOP\r\n",
    ):
        check_imap_parser(data)


def test_imap_core_unterminated_and_lying_literals() -> None:
    for data in (
        b"a LOGIN {5}\r\nann",
        b"a LOGIN {99999999999999999999}\r\nx\r\nb NOOP\r\n",
        b"a APPEND INBOX {3000+}\r\n" + b"x" * 10 + b"\r\nb NOOP\r\n",
        b"a LOGIN {3+}\r\nann {6+}\r\nsecret\r\n",
        b"a X {0}\r\n\r\n" * 20,
    ):
        check_imap_core(data, [1, 3, 7, 64])


def test_imap_session_examples() -> None:
    lines = [
        b"LOGIN ann secret",
        b"SELECT INBOX",
        b"FETCH 1:* (BODY[1.2.3.4.5] BINARY[2] BODYSTRUCTURE)",
        b"FETCH 4294967295 FLAGS",
        b"STORE 1 +FLAGS (\\Recent)",
        b"SEARCH " + b"NOT " * 2000 + b"ALL",
        b"CREATE &AC4ALg-",
        b"RENAME INBOX &AC4ALg-",
        b"AUTHENTICATE PLAIN",
        b"IDLE",
        b"UID EXPUNGE 1:*",
        b"LOGOUT",
    ]
    check_imap_session([(b"T%04dQ" % i, b"T%04dQ " % i + line) for i, line in enumerate(lines)])
