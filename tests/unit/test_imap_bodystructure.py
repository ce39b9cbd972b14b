import pytest

from mailsrv.imap.bodystructure import body_structure
from mailsrv.message.structure import parse_message
from tests.unit.mime_corpus import NAMES, golden, wire


@pytest.mark.parametrize("name", NAMES)
def test_body_and_bodystructure_match_dovecot(name):
    answers = golden(name)
    root = parse_message(wire(name))
    assert body_structure(root, extended=False) == answers["BODY"]
    assert body_structure(root, extended=True) == answers["BODYSTRUCTURE"]


def test_corpus_is_there():
    assert len(NAMES) >= 20


def test_message_global_is_encapsulated_for_imap4rev2():
    root = parse_message(wire("message_global"))
    rev1 = body_structure(root, extended=False)
    rev2 = body_structure(root, extended=False, rev2=True)
    assert rev1 == b'(("message" "global" NIL NIL NIL "7bit" 52) "mixed")'
    assert rev2.startswith(b'(("message" "global" NIL NIL NIL "7bit" 52 (NIL {6}\r\nh\xc3\xa9llo')
    assert rev2.endswith(b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0) 3) "mixed")')


def _leaf(header: bytes, body: bytes = b"x\r\n") -> bytes:
    return body_structure(parse_message(header + b"\r\n" + body), extended=True)


def test_text_part_without_charset_gets_us_ascii_last():
    out = _leaf(b"Content-Type: text/html; format=flowed\r\n")
    assert out.startswith(b'("text" "html" ("format" "flowed" "charset" "us-ascii") NIL NIL')


def test_non_text_has_no_lines_and_nil_params():
    out = _leaf(b"Content-Type: application/octet-stream\r\n")
    assert out == b'("application" "octet-stream" NIL NIL NIL "7bit" 3 NIL NIL NIL NIL)'


def test_8bit_parameter_goes_out_as_literal():
    out = _leaf(b'Content-Type: text/plain; name="caf\xc3\xa9"\r\n')
    assert b'("name" {5}\r\ncaf\xc3\xa9 "charset" "us-ascii")' in out


def test_sizes_and_lines_count_lf():
    out = _leaf(b"", b"a\r\nb\r\nc")
    assert out == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 2 NIL NIL NIL NIL)'


def test_rfc2231_continuations_joined():
    out = _leaf(b'Content-Type: text/plain; a*1="two"; a*0="one "; b*=utf-8\'\'%41; c=3\r\n')
    assert b'("c" "3" "a" "one two" "b*" "utf-8\'\'%41" "charset" "us-ascii")' in out


def test_deeply_nested_multipart_does_not_blow_up():
    parts = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(300)
    )
    msg = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + parts + b"--b300\r\n\r\nx\r\n"
    out = body_structure(parse_message(msg), extended=True)
    assert out.startswith(b"((((")
