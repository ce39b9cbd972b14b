"""The sans-I/O POP3 core: framing, parsing, the state table, and response encoding."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.errors import CoreMisuse
from mailsrv.pop3 import commands as c
from mailsrv.pop3.parser import parse_command
from mailsrv.pop3.protocol import (
    LEGAL,
    NEED_DATA,
    Pop3Protocol,
    State,
)
from mailsrv.pop3.responses import (
    Continuation,
    Err,
    MultiLine,
    Ok,
    Raw,
    dot_stuff,
    dot_unstuff,
    encode,
    top_of,
    uidl_of,
)


def commands_of(data: bytes, *, state: State = State.AUTHORIZATION) -> list[object]:
    """Every command in ``data``, fed whole, byte by byte, and followed by extra bytes."""
    results = []
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))], [data + b"NOOP"]):
        core = Pop3Protocol()
        core.state = state
        got: list[object] = []
        for chunk in chunks:
            core.receive_data(chunk)
            while (cmd := core.next_command()) is not NEED_DATA:
                got.append(cmd)
                core.send(Err("x"))
        results.append(got)
    assert results[0] == results[1] == results[2]
    return results[0]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"USER ann", c.User("ann")),
        (b"user ann", c.User("ann")),
        (b"PASS my secret ", c.Pass("my secret ")),
        (b"PASS ", c.Pass("")),
        (
            b"APOP ann C4C9334BAC560ECC979E58001B3E22FB",
            c.Apop("ann", "c4c9334bac560ecc979e58001b3e22fb"),
        ),
        (b"AUTH", c.Auth()),
        (b"AUTH plain", c.Auth("PLAIN")),
        (b"AUTH PLAIN AGFubgBwdw==", c.Auth("PLAIN", "AGFubgBwdw==")),
        (b"CAPA", c.Capa()),
        (b"STLS", c.Stls()),
        (b"QUIT", c.Quit()),
        (b"QUIT ", c.Quit()),
        (b"STAT", c.Stat()),
        (b"LIST", c.List()),
        (b"LIST 3", c.List(3)),
        (b"UIDL", c.Uidl()),
        (b"UIDL 12", c.Uidl(12)),
        (b"RETR 1", c.Retr(1)),
        (b"TOP 1 0", c.Top(1, 0)),
        (b"TOP 2 10", c.Top(2, 10)),
        (b"DELE 7", c.Dele(7)),
        (b"NOOP", c.Noop()),
        (b"RSET", c.Rset()),
    ],
)
def test_parse_command(line: bytes, expected: object) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty command line"),
        (b"FOO", "unknown command: FOO"),
        (b"RETR", "RETR needs a message number"),
        (b"RETR x", "invalid message number: x"),
        (b"RETR -1", "invalid message number: -1"),
        (b"RETR 1 2", "RETR needs a message number"),
        (b"TOP 1", "TOP needs a message number and a line count"),
        (b"TOP 1 x", "invalid line count: x"),
        (b"LIST 1 2", "LIST takes at most one message number"),
        (b"STAT 1", "STAT takes no arguments"),
        (b"USER", "USER needs a user name"),
        (b"PASS", "PASS needs a password"),
        (b"APOP ann nothex", "APOP needs a user name and a 32-digit hex MD5 digest"),
        (b"AUTH PLAIN a b", "AUTH takes a mechanism and at most one initial response"),
        (b"USER \xff", "command line is not valid UTF-8"),
        (b"USER a\0b", "NUL in command line"),
    ],
)
def test_parse_invalid(line: bytes, reason: str) -> None:
    cmd = parse_command(line)
    assert isinstance(cmd, c.InvalidCommand)
    assert cmd.reason == reason


def test_pipelined_commands_whole_bytewise_and_with_extra_data() -> None:
    data = b"CAPA\r\nUSER ann\r\nPASS pw\r\n"
    assert commands_of(data) == [c.Capa(), c.User("ann"), c.Pass("pw")]


def test_bare_lf_ends_a_line() -> None:
    # Decided here, once: POP3 clients upload no data, so a lone LF can mean nothing but the
    # end of a command; netcat/telnet users and some embedded clients send exactly that.
    assert commands_of(b"USER ann\nPASS pw\n") == [c.User("ann"), c.Pass("pw")]
    # A lone CR is not a line end: it stays in the line, which is then not a known command.
    (cmd,) = commands_of(b"STAT\rNOOP\r\n", state=State.TRANSACTION)
    assert isinstance(cmd, c.InvalidCommand)


def test_state_table() -> None:
    assert "USER" in LEGAL[State.AUTHORIZATION]
    assert "RETR" not in LEGAL[State.AUTHORIZATION]
    assert "RETR" in LEGAL[State.TRANSACTION]
    assert "USER" not in LEGAL[State.TRANSACTION]
    assert LEGAL[State.UPDATE] == frozenset()
    (cmd,) = commands_of(b"RETR 1\r\n")
    assert cmd == c.InvalidCommand("RETR is not allowed in the AUTHORIZATION state", "RETR")
    (cmd,) = commands_of(b"PASS x\r\n", state=State.TRANSACTION)
    assert cmd == c.InvalidCommand("PASS is not allowed in the TRANSACTION state", "PASS")


def test_line_limit_is_255_octets_with_crlf() -> None:
    ok = b"USER " + b"a" * 248 + b"\r\n"
    assert len(ok) == 255
    assert commands_of(ok) == [c.User("a" * 248)]
    long = b"USER " + b"a" * 249 + b"\r\n"
    assert commands_of(long) == [c.InvalidCommand("line too long")]


def test_overlong_line_answered_once_and_skipped_to_lf() -> None:
    core = Pop3Protocol()
    core.receive_data(b"USER " + b"x" * 300)
    assert core.next_command() == c.InvalidCommand("line too long")
    assert core.send(Err("line too long")) == b"-ERR line too long\r\n"
    core.receive_data(b"y" * 1000)
    assert core.next_command() is NEED_DATA
    core.receive_data(b"zzz\r\nCAPA\r\n")
    assert core.next_command() == c.Capa()


def test_a_command_must_be_answered_before_the_next() -> None:
    core = Pop3Protocol()
    core.receive_data(b"CAPA\r\nCAPA\r\n")
    assert core.next_command() == c.Capa()
    with pytest.raises(CoreMisuse):
        core.next_command()


def test_transitions_follow_the_responses() -> None:
    core = Pop3Protocol()
    core.receive_data(b"USER a\r\nPASS b\r\nPASS c\r\n")
    core.next_command()
    core.send(Ok())
    core.next_command()
    core.send(Err("invalid credentials", "AUTH"))
    assert core.state.name == "AUTHORIZATION"
    core.next_command()
    core.send(Ok("logged in"))
    assert core.state.name == "TRANSACTION"
    core.receive_data(b"QUIT\r\nNOOP\r\n")
    assert core.next_command() == c.Quit()
    core.send(Ok("bye"))
    assert core.state.name == "UPDATE"
    assert core.closed
    assert core.next_command() is NEED_DATA


def test_sasl_lines_are_not_commands() -> None:
    core = Pop3Protocol()
    core.receive_data(b"AUTH PLAIN\r\nQUIT\r\n")
    assert core.next_command() == c.Auth("PLAIN")
    assert core.send(Continuation()) == b"+ \r\n"
    assert core.in_sasl
    assert core.next_command() == c.SaslResponse("QUIT")
    core.send(Ok())
    assert core.state is State.TRANSACTION
    with pytest.raises(CoreMisuse):
        core.send(Continuation())


def test_stls_discards_pipelined_plaintext() -> None:
    core = Pop3Protocol()
    core.receive_data(b"STLS\r\nUSER evil\r\n")
    assert core.next_command() == c.Stls()
    core.send(Ok("begin TLS"))
    assert core.tls_pending
    core.receive_data(b"PASS evil\r\n")
    assert core.next_command() is NEED_DATA
    core.tls_established()
    assert core.tls
    core.receive_data(b"CAPA\r\n")
    assert core.next_command() == c.Capa()


def test_encode_responses() -> None:
    assert encode(Ok()) == b"+OK\r\n"
    assert encode(Ok("2 320")) == b"+OK 2 320\r\n"
    assert encode(Err("invalid credentials", "AUTH")) == b"-ERR [AUTH] invalid credentials\r\n"
    assert encode(Err("a\r\nb")) == b"-ERR a  b\r\n"
    assert encode(Continuation("VXNlcm5hbWU6")) == b"+ VXNlcm5hbWU6\r\n"
    assert encode(Raw("-ERR [SYS/TEMP] later")) == b"-ERR [SYS/TEMP] later\r\n"
    assert encode(MultiLine("list", b"1 2\r\n")) == b"+OK list\r\n1 2\r\n.\r\n"
    assert encode(MultiLine("empty")) == b"+OK empty\r\n.\r\n"


def test_dot_stuffing() -> None:
    assert dot_stuff(b".a\r\nb\r\n.\r\n..c") == b"..a\r\nb\r\n..\r\n...c\r\n"
    assert encode(MultiLine("x", b"a\r\n.\r\n")) == b"+OK x\r\na\r\n..\r\n.\r\n"


def test_top_of() -> None:
    msg = b"Subject: x\r\nFrom: a\r\n\r\nl1\r\nl2\r\nl3\r\n"
    assert top_of(msg, 0) == b"Subject: x\r\nFrom: a\r\n\r\n"
    assert top_of(msg, 2) == b"Subject: x\r\nFrom: a\r\n\r\nl1\r\nl2\r\n"
    assert top_of(msg, 99) == msg
    assert top_of(b"Subject: no body\r\n", 3) == b"Subject: no body\r\n"
    assert top_of(b"\r\nbody\r\n", 1) == b"\r\nbody\r\n"


def test_uidl_matches_dovecot_default_format() -> None:
    # dovecot 2.3 with pop3_uidl_format = %08Xu%08Xv prints "000000016b023410" for
    # UID 1 in a folder with UIDVALIDITY 1795306512.
    assert uidl_of(1, 1795306512) == "000000016b023410"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(list(State)))
def test_random_bytes_never_raise(chunks: list[bytes], state: State) -> None:
    core = Pop3Protocol()
    core.state = state
    for chunk in chunks:
        core.receive_data(chunk)
        while (cmd := core.next_command()) is not NEED_DATA:
            assert isinstance(cmd, (c.InvalidCommand, *typing.get_args(c.Command)))
            core.send(Err("no"))


_lines = st.lists(st.text(alphabet=".ab\r", max_size=6).map(str.encode), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_lines)
def test_dot_stuff_round_trip(lines: list[bytes]) -> None:
    data = b"".join(line.replace(b"\r", b"") + b"\r\n" for line in lines)
    block = dot_stuff(data)
    # The block never contains the terminator, so a client reads it back exactly.
    assert not (b"\r\n" + block).count(b"\r\n.\r\n")
    assert dot_unstuff(block) == data
