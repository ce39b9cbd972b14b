import pytest

from mailsrv.imap.envelope import envelope
from mailsrv.message.addresses import Address, parse_addresses
from mailsrv.message.structure import parse_message
from tests.unit.mime_corpus import NAMES, golden, wire


@pytest.mark.parametrize("name", NAMES)
def test_envelope_matches_dovecot(name):
    assert envelope(parse_message(wire(name))) == golden(name)["ENVELOPE"]


def _env(header: bytes) -> bytes:
    return envelope(parse_message(header + b"\r\nbody\r\n"))


def test_absent_everything_is_nil():
    assert _env(b"X-Other: 1\r\n") == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_sender_and_reply_to_default_to_from():
    out = _env(b"From: a@b.c\r\n")
    assert out == (
        b'(NIL NIL ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) '
        b"NIL NIL NIL NIL NIL)"
    )


def test_encoded_words_stay_raw_and_8bit_is_literal():
    out = _env(b"Subject: =?utf-8?q?caf=C3=A9?=\r\nTo: Zo\xc3\xab <z@x.y>\r\n")
    assert b'"=?utf-8?q?caf=C3=A9?="' in out
    assert b'(({4}\r\nZo\xc3\xab NIL "z" "x.y"))' in out


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
