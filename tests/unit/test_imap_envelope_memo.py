"""ENVELOPE address lists remembered per header value give the same bytes as parsing anew."""

from __future__ import annotations

from mailsrv.imap import envelope as env_mod
from mailsrv.imap.envelope import address_list, addresses, envelope
from mailsrv.message.addresses import parse_addresses
from mailsrv.message.structure import parse_message


def test_memo_matches_a_fresh_parse() -> None:
    env_mod._ADDRESSES_DONE.clear()
    value = b' "Ann A." <ann@example.com>, bob@example.org (Bob)'
    first = addresses(value)
    assert first == address_list(parse_addresses(value))
    assert env_mod._ADDRESSES_DONE[value] == first
    assert addresses(value) is first  # the second time from the memo
    assert addresses(None) == b"NIL"
    long = b"x@example.com, " * 100
    assert addresses(long) == address_list(parse_addresses(long))
    assert long not in env_mod._ADDRESSES_DONE  # big values are not kept


def test_sender_and_reply_to_fall_back_to_from_with_the_memo() -> None:
    msg = b"From: Ann <ann@example.com>\r\nSender: \r\nTo: bob@example.com\r\n\r\nhi\r\n"
    for _ in range(2):  # cold memo, then warm: same bytes
        got = envelope(parse_message(msg))
        ann = b'(("Ann" NIL "ann" "example.com"))'
        assert got == (
            b"(NIL NIL " + ann + b" " + ann + b" " + ann
            + b' ((NIL NIL "bob" "example.com")) NIL NIL NIL NIL)'
        )  # fmt: skip
