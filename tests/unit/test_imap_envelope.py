import pytest

from mailsrv.imap.envelope import envelope
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
