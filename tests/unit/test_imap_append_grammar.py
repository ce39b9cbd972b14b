"""MULTIAPPEND (RFC 3502), CATENATE (RFC 4469) and QUOTA (RFC 9208) grammar: whole, byte by
byte and with data after it through the framing layer, the literal limits over a whole
MULTIAPPEND, and the IMAP URLs CATENATE takes (RFC 5092)."""

from __future__ import annotations

import pytest

from mailsrv.imap.commands import (
    Append,
    AppendMessage,
    CatenateText,
    CatenateUrl,
    GetQuota,
    InvalidCommand,
    SetQuota,
)
from mailsrv.imap.framing import APPEND_TOTAL_MESSAGES, NEED_DATA, CommandFramer
from mailsrv.imap.imap_url import BadUrl, ImapUrl, parse_imap_url
from mailsrv.imap.parser import parse_command
from mailsrv.imap.tokens import SectionSpec
from tests.unit.test_imap_framing import feed_all_ways

MULTI = (
    b'a APPEND Sent (\\Seen) "07-Feb-1994 21:52:25 -0800" {5}\r\nfirst'
    b" (\\Flagged $Work) {6+}\r\nsecond ~{5}\r\nthi\x00d\r\n"
)


def test_multiappend_whole_and_byte_by_byte() -> None:
    expected = Append(
        "a",
        b"Sent",
        (
            AppendMessage(("\\Seen",), 760686745.0, b"first"),
            AppendMessage(("\\Flagged", "$Work"), None, b"second"),
            AppendMessage((), None, b"thi\x00d", binary=True),
        ),
    )
    for result in feed_all_ways(MULTI):
        assert result == [expected]


def test_each_synchronizing_literal_gets_its_continuation() -> None:
    f = CommandFramer(max_line=1000, max_append=100)
    f.receive_data(b"a APPEND INBOX {2}\r\n")
    assert f.next_command() is NEED_DATA
    assert f.data_to_send() == b"+ Ready for literal data\r\n"
    f.receive_data(b"hi {2}\r\n")
    assert f.next_command() is NEED_DATA
    assert f.data_to_send() == b"+ Ready for literal data\r\n"
    f.receive_data(b"yo\r\n")
    cmd = f.next_command()
    assert isinstance(cmd, Append) and [m.message for m in cmd.messages] == [b"hi", b"yo"]


def test_catenate_parts_and_catenate_with_plain_messages() -> None:
    data = (
        b'a APPEND Drafts (\\Draft) CATENATE (URL "/INBOX;UIDVALIDITY=7/;UID=3/;SECTION=HEADER"'
        b" TEXT {5}\r\nhello URL ;uid=4 text ~{2+}\r\nhi) {3+}\r\nabc catenate (TEXT {1}\r\nx)\r\n"
    )
    expected = Append(
        "a",
        b"Drafts",
        (
            AppendMessage(
                ("\\Draft",),
                None,
                (
                    CatenateUrl(b"/INBOX;UIDVALIDITY=7/;UID=3/;SECTION=HEADER"),
                    CatenateText(b"hello"),
                    CatenateUrl(b";uid=4"),
                    CatenateText(b"hi", binary=True),
                ),
            ),
            AppendMessage((), None, b"abc"),
            AppendMessage((), None, (CatenateText(b"x"),)),
        ),
    )
    for result in feed_all_ways(data):
        assert result == [expected]


@pytest.mark.parametrize(
    "data",
    [
        b"a APPEND INBOX CATENATE ()\r\n",
        b"a APPEND INBOX CATENATE (TEXT)\r\n",
        b'a APPEND INBOX CATENATE (TEXT "quoted")\r\n',
        b"a APPEND INBOX CATENATE (BOGUS {1}\r\nx)\r\n",
        b"a APPEND INBOX CATENATE (URL)\r\n",
        b"a APPEND INBOX {1}\r\nx junk\r\n",
        b"a APPEND INBOX {1}\r\nx (\\Seen)\r\n",
        b"a APPEND INBOX {1}\r\nx  {1}\r\ny\r\n",
        b"a APPEND INBOX UTF8 ({1}\r\nx)\r\n",
    ],
)
def test_bad_append_grammar_is_a_bad_with_the_tag(data: bytes) -> None:
    cmd = parse_command(data)
    assert isinstance(cmd, InvalidCommand) and cmd.tag == "a", cmd


def test_every_literal_of_a_multiappend_counts_towards_one_limit() -> None:
    f = CommandFramer(max_line=1000, max_append=100)
    total = 100 * APPEND_TOTAL_MESSAGES
    pieces = [b"a APPEND INBOX"] + [b" {100+}\r\n" + b"x" * 100] * APPEND_TOTAL_MESSAGES
    f.receive_data(b"".join(pieces) + b"\r\n")
    cmd = f.next_command()
    assert isinstance(cmd, Append) and sum(len(m.message) for m in cmd.messages) == total
    f.receive_data(b"".join(pieces) + b" {1}\r\n")  # one more octet than the budget
    refused = f.next_command()
    assert refused == InvalidCommand("a", "Message too large", "TOOBIG")
    assert f.data_to_send() == b""  # no continuation: the client abandons the command
    f.receive_data(b"b NOOP\r\n")
    assert parse_command(b"b NOOP\r\n") == f.next_command()


def test_an_over_limit_second_message_refuses_the_whole_command() -> None:
    f = CommandFramer(max_line=1000, max_append=10)
    f.receive_data(b"a APPEND INBOX {2+}\r\nhi {11+}\r\n" + b"y" * 11 + b"\r\nb NOOP\r\n")
    assert f.next_command() == InvalidCommand("a", "Message too large", "TOOBIG")
    assert parse_command(b"b NOOP\r\n") == f.next_command()


# -- IMAP URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (b"/INBOX/;UID=5", ImapUrl(b"INBOX", 5)),
        (b"/INBOX;uidvalidity=9/;uid=5", ImapUrl(b"INBOX", 5, 9)),
        (
            b"imap://alice@localhost:143/A%2FB%20C;UIDVALIDITY=9/;UID=5/;SECTION=1.MIME",
            ImapUrl(b"A/B C", 5, 9, SectionSpec((1,), "MIME"), user=b"alice"),
        ),
        (
            b"/Sent/;UID=5/;section=HEADER.FIELDS%20(From%20To)/;PARTIAL=10.20",
            ImapUrl(b"Sent", 5, None, SectionSpec((), "HEADER.FIELDS", ("FROM", "TO")), (10, 20)),
        ),
        (b";UID=7/;SECTION=TEXT", ImapUrl(None, 7, None, SectionSpec((), "TEXT"))),
        (b"/INBOX/;UID=5/;PARTIAL=100000", ImapUrl(b"INBOX", 5, partial=(100000, None))),
        (b"imap://host/INBOX/;UID=5", ImapUrl(b"INBOX", 5)),
        (b"IMAP://al%40x;AUTH=*@host/INBOX/;UID=5", ImapUrl(b"INBOX", 5, user=b"al@x")),
    ],
)
def test_urls_catenate_accepts(url: bytes, expected: ImapUrl) -> None:
    assert parse_imap_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        b"",
        b"/INBOX",
        b"/INBOX;UIDVALIDITY=9",
        b"/;UID=5",
        b"INBOX/;UID=5",
        b"/INBOX/;UID=0",
        b"/INBOX/;UID=x",
        b"/INBOX/;UID=5/;SECTION=BOGUS",
        b"/INBOX/;UID=5/;SECTION=1/;SECTION=2",
        b"/INBOX/;SECTION=1/;UID=5",
        b"/INBOX/;UID=5;URLAUTH=anonymous:internal:abc",
        b"/INBOX/;UID=5/;EXPIRE=2030-01-01T00:00:00Z",
        b"/INBOX/;UID=5/;PARTIAL=1.0",
        b";UIDVALIDITY=1/;UID=5",
        b"imap://host",
        b"http://host/INBOX/;UID=5",
    ],
)
def test_urls_catenate_refuses(url: bytes) -> None:
    with pytest.raises(BadUrl):
        parse_imap_url(url)


# -- QUOTA commands (RFC 9208 §4) -------------------------------------------------------------


def test_quota_commands_whole_and_byte_by_byte() -> None:
    data = (
        b'a GETQUOTA "User quota"\r\nb GETQUOTAROOT {5}\r\nINBOX\r\n'
        b'c SETQUOTA "User quota" (STORAGE 512 MESSAGE 10)\r\n'
    )
    expected = [
        GetQuota("a", b"User quota", "GETQUOTA"),
        GetQuota("b", b"INBOX", "GETQUOTAROOT"),
        SetQuota("c", b"User quota"),
    ]
    for result in feed_all_ways(data):
        assert result == expected


@pytest.mark.parametrize(
    "data",
    [b"a GETQUOTA\r\n", b"a GETQUOTAROOT INBOX extra\r\n", b'a SETQUOTA ""\r\n', b"a SETQUOTA\r\n"],
)
def test_bad_quota_commands(data: bytes) -> None:
    cmd = parse_command(data)
    assert isinstance(cmd, InvalidCommand) and cmd.tag == "a"
