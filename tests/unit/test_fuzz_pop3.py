"""POP3 core and session under hostile input (the properties of tests/fuzz.py, a few examples)."""

from __future__ import annotations

from tests.fuzz import BY_NAME, check_pop3_core, check_pop3_session, property_test


def test_pop3_core_any_bytes_become_the_same_commands_whole_or_in_pieces() -> None:
    property_test(BY_NAME["pop3-core"], 150)()


def test_pop3_session_answers_every_command_exactly_once() -> None:
    property_test(BY_NAME["pop3-session"], 60)()


def test_pop3_core_examples_that_once_looked_dangerous() -> None:
    for data in (
        b"\x00\r\n",
        b"USER \xff\xfe\r\n",
        b"RETR 99999999999999999999999\r\n",
        b"AUTH PLAIN\r\n" + b"A" * 9000 + b"\r\nNOOP\r\n",
        b"x" * 300 + b"\r\n" + b"y" * 300,
        b"TOP 1 -1\r\nLIST 0\r\nQUIT\r\n",
    ):
        check_pop3_core(data, [1, 2, 3, 5, 7, 11])


def test_pop3_session_damaged_commands_after_login() -> None:
    check_pop3_session(
        [
            b"USER ann",
            b"PASS secret",
            b"RETR 0",
            b"RETR 4294967296",
            b"TOP 1 99999999999999999999",
            b"DELE -1",
            b"LIST 1 2",
            b"UIDL \x00",
            b"\xff\xfe",
            b"x" * 400,
            b"AUTH PLAIN",
            b"QUIT",
        ]
    )


def test_pop3_session_sasl_junk() -> None:
    check_pop3_session([b"AUTH LOGIN", b"!!!not base64", b"AUTH PLAIN", b"=", b"AUTH X", b"*"])
