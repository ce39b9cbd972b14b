"""RFC 5322 address lists in ENVELOPE's shape (message/addresses.py)."""

import pytest

from mailsrv.message.addresses import Address, address_text, parse_addresses


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"a@b", [Address(None, None, b"a", b"b")]),
        (b"Ann Lee <ann@x.org>", [Address(b"Ann Lee", None, b"ann", b"x.org")]),
        (b"John Q. Public <jqp@x>", [Address(b"John Q. Public", None, b"jqp", b"x")]),
        (b"ann@x.org (Ann)", [Address(b"Ann", None, b"ann", b"x.org")]),
        (b"<@r1,@r2:u@h>", [Address(None, b"@r1,@r2", b"u", b"h")]),
        (b"u@[192.0.2.1]", [Address(None, None, b"u", b"[192.0.2.1]")]),
        (b"nobody", [Address(None, None, b"nobody", b"MISSING_DOMAIN")]),
        (
            b"g: a@b;",
            [
                Address(None, None, b"g", None),
                Address(None, None, b"a", b"b"),
                Address(None, None, None, None),
            ],
        ),
        (b"", []),
        (b"a@b,", [Address(None, None, b"a", b"b")]),
    ],
)
def test_parse_addresses(value, expected):
    assert parse_addresses(value) == expected


def test_parse_addresses_never_raises_on_junk():
    for junk in [b"<<<", b'"unterminated', b"(open comment", b"@@@,,;;::", b"\xff\xfe<a@b>", b">"]:
        assert isinstance(parse_addresses(junk), list)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"<user-from (comment)@ (comment) domain.org>", b"user-from@domain.org"),
        (b"user-from@domain.org (RealFrom)", b"RealFrom <user-from@domain.org>"),
        (b'"Ann Lee" <ann@x.org>, b@c', b"Ann Lee <ann@x.org>, b@c"),
        (
            b"g: a@b, c@d;,\r\n  h: e@f;",
            b"g: a@b, c@d;, h: e@f;",
        ),
        (b"g:;", b"g: ;"),
        (b"nobody", b"nobody"),
        (b"", b""),
    ],
)
def test_address_text(value, expected):
    assert address_text(value) == expected
