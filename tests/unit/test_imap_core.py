"""The IMAP core's protocol state: events per read mode, the legal commands of each state, the
transitions, and STARTTLS's input cut-off (RFC 9051 §3, §6.2.1)."""

from __future__ import annotations

import pytest

from mailsrv.errors import CoreMisuse
from mailsrv.imap.commands import (
    Capability,
    Enable,
    Fetch,
    InvalidCommand,
    Login,
    Noop,
    Select,
    StartTls,
    UidExpunge,
)
from mailsrv.imap.core import LEGAL, NEED_DATA, IdleEnd, ImapCore, ReadMode, SaslResponse, State


def core() -> ImapCore:
    return ImapCore(max_line=1000, max_append=10_000)


def events(c: ImapCore, data: bytes) -> list[object]:
    c.receive_data(data)
    out: list[object] = []
    while (ev := c.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def test_legal_commands_table() -> None:
    assert Login in LEGAL[State.NOT_AUTHENTICATED]
    assert Select not in LEGAL[State.NOT_AUTHENTICATED]
    assert Fetch in LEGAL[State.SELECTED] and Fetch not in LEGAL[State.AUTHENTICATED]
    assert Enable in LEGAL[State.AUTHENTICATED] and Enable not in LEGAL[State.SELECTED]
    assert UidExpunge in LEGAL[State.SELECTED]
    assert LEGAL[State.LOGOUT] == frozenset()


def test_commands_not_allowed_now_come_out_as_invalid_with_the_reason() -> None:
    c = core()
    got = events(c, b"a SELECT INBOX\r\nb UID FETCH 1 FLAGS\r\nc NOOP\r\n")
    assert got == [
        InvalidCommand("a", "SELECT needs authentication first", name="SELECT"),
        InvalidCommand("b", "UID FETCH needs authentication first", name="UID FETCH"),
        Noop("c"),
    ]
    c.logged_in()
    got = events(c, b"d FETCH 1 FLAGS\r\ne LOGIN a b\r\n")
    assert got == [
        InvalidCommand("d", "FETCH needs a selected mailbox", name="FETCH"),
        InvalidCommand("e", "LOGIN is not allowed now", name="LOGIN"),
    ]
    c.selected()
    (enable,) = events(c, b"f ENABLE UTF8=ACCEPT\r\n")
    assert enable == InvalidCommand("f", "ENABLE is only allowed before SELECT", name="ENABLE")


def test_transitions_follow_rfc_9051_section_3() -> None:
    c = core()
    assert c.state is State.NOT_AUTHENTICATED
    with pytest.raises(CoreMisuse):
        c.selected()
    c.logged_in()
    assert c.state is State.AUTHENTICATED
    with pytest.raises(CoreMisuse):
        c.logged_in()
    with pytest.raises(CoreMisuse):
        c.unselected()
    c.selected()
    c.selected()  # SELECT while selected: stays selected
    c.unselected()
    assert c.state is State.AUTHENTICATED
    c.logged_out()
    assert c.state is State.LOGOUT and c.closed
    assert events(c, b"a NOOP\r\n") == []  # nothing is read after LOGOUT


def test_sasl_and_idle_lines_are_read_as_lines_then_commands_again() -> None:
    c = core()
    c.expect_sasl()
    assert c.mode is ReadMode.SASL
    assert events(c, b"AGFubgBwdw==\r\na NOOP\r\n") == [SaslResponse(b"AGFubgBwdw=="), Noop("a")]
    assert c.mode is ReadMode.COMMAND
    c.logged_in()
    c.start_idle()
    (done,) = events(c, b"done\r\n")
    assert done == IdleEnd(b"done") and done.done
    c.start_idle()
    (other,) = events(c, b"NOOP\r\n")
    assert isinstance(other, IdleEnd) and not other.done
    with pytest.raises(CoreMisuse):
        c.expect_sasl()  # no AUTHENTICATE once logged in


def test_starttls_drops_plaintext_pipelined_after_it() -> None:
    """RFC 9051 §6.2.1: a command injected after STARTTLS must not run as if sent over TLS."""
    c = core()
    assert events(c, b"a STARTTLS\r\n") == [StartTls("a")]
    c.receive_data(b"b LOGIN ann secret\r\n")  # same packet as STARTTLS, say
    c.start_tls()
    c.receive_data(b"c CAPABILITY\r\n")  # before the handshake: dropped too
    assert c.next_event() is NEED_DATA
    c.tls_established()
    assert events(c, b"d CAPABILITY\r\n") == [Capability("d")]
    with pytest.raises(CoreMisuse):
        c.tls_established()


def test_same_events_whatever_the_chunking() -> None:
    data = b"a LOGIN {3}\r\nann {2+}\r\npw\r\nb NOOP\r\n"
    whole = events(core(), data)
    c = core()
    single: list[object] = []
    for i in range(len(data)):
        single.extend(events(c, data[i : i + 1]))
    assert whole == single == [Login("a", b"ann", b"pw"), Noop("b")]
