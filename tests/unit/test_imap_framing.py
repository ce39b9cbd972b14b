"""IMAP command framing: line cutting, literals, limits (the core's state is in test_imap_core)."""

from __future__ import annotations

from mailsrv.errors import PeerError
from mailsrv.imap.commands import Append, AppendMessage, InvalidCommand, Login, Noop
from mailsrv.imap.framing import NEED_DATA, CommandFramer


def core(**kw: int) -> CommandFramer:
    kw.setdefault("max_line", 1000)
    kw.setdefault("max_append", 10_000)
    kw.setdefault("max_literal", 100)
    return CommandFramer(**kw)


def drain(c: CommandFramer) -> list[object]:
    out: list[object] = []
    while (ev := c.next_command()) is not NEED_DATA:
        out.append(ev)
    return out


def feed_all_ways(data: bytes) -> list[list[object]]:
    """Whole, byte by byte, and with trailing garbage: the same commands each time."""
    results = []
    whole = core()
    whole.receive_data(data)
    results.append(drain(whole))
    single = core()
    got: list[object] = []
    for i in range(len(data)):
        single.receive_data(data[i : i + 1])
        got.extend(drain(single))
    results.append(got)
    extra = core()
    extra.receive_data(data + b"x NOO")
    results.append(drain(extra))
    return results


def test_same_commands_whatever_the_chunking() -> None:
    data = b"a NOOP\r\nb LOGIN {3}\r\nann {2+}\r\npw\r\nc APPEND INBOX {5}\r\nhello\r\n"
    expected = [
        Noop("a"),
        Login("b", b"ann", b"pw"),
        Append("c", b"INBOX", (AppendMessage((), None, b"hello"),)),
    ]
    for result in feed_all_ways(data):
        assert result == expected


def test_synchronizing_literal_asks_for_continuation() -> None:
    c = core()
    c.receive_data(b"a LOGIN {3}\r\n")
    assert c.next_command() is NEED_DATA
    assert c.data_to_send() == b"+ Ready for literal data\r\n"
    c.receive_data(b"ann {2+}\r\npw\r\n")
    assert c.next_command() == Login("a", b"ann", b"pw")
    assert c.data_to_send() == b""  # LITERAL+: no continuation for {2+}


def test_bare_lf_ends_a_line() -> None:
    """Scripted clients (nc, hand-written tests) often send LF only: treat it as CRLF."""
    c = core()
    c.receive_data(b"a NOOP\nb LOGIN {2}\nab pw\n")
    assert drain(c) == [Noop("a"), Login("b", b"ab", b"pw")]


def test_oversized_sync_literal_refused_without_continuation() -> None:
    c = core()
    c.receive_data(b"a LOGIN {500}\r\n")
    result = c.next_command()
    assert isinstance(result, InvalidCommand) and result.tag == "a" and result.code is None
    assert c.data_to_send() == b""
    c.receive_data(b"b NOOP\r\n")
    assert c.next_command() == Noop("b")


def test_oversized_append_is_toobig() -> None:
    c = core()
    c.receive_data(b"a APPEND INBOX {20000}\r\n")
    result = c.next_command()
    assert isinstance(result, InvalidCommand) and result.code == "TOOBIG"
    assert c.data_to_send() == b""


def test_oversized_nonsync_literal_is_swallowed() -> None:
    c = core()
    c.receive_data(b"a APPEND INBOX {20000+}\r\n")
    result = c.next_command()
    assert isinstance(result, InvalidCommand) and result.code == "TOOBIG"
    c.receive_data(b"x" * 15000)
    assert c.next_command() is NEED_DATA
    assert c.buffered == 0  # never buffered
    c.receive_data(b"x" * 5000 + b" rest of line\r\nb NOOP\r\n")
    assert drain(c) == [Noop("b")]


def test_too_long_line_gets_tagged_bad_and_session_goes_on() -> None:
    c = core()
    c.receive_data(b"t1 LOGIN " + b"a" * 2000)
    result = c.next_command()
    assert isinstance(result, InvalidCommand) and result.tag == "t1"
    c.receive_data(b"a" * 500 + b"\r\nt2 NOOP\r\n")
    assert drain(c) == [Noop("t2")]


def test_empty_lines_are_ignored() -> None:
    c = core()
    c.receive_data(b"\r\n\r\na NOOP\r\n")
    assert drain(c) == [Noop("a")]


def test_next_line_and_discard() -> None:
    c = core()
    c.receive_data(b"AGFubgBwdw==\r\nDONE\nrest")
    assert c.next_line() == b"AGFubgBwdw=="
    assert c.next_line() == b"DONE"
    assert c.next_line() is NEED_DATA
    c.discard_input()
    assert c.buffered == 0
    c.receive_data(b"x" * 1500)
    try:
        c.next_line()
    except PeerError:
        pass
    else:
        raise AssertionError("an endless SASL line must end the connection")
