from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.imap.bodystructure import body_structure
from mailsrv.imap.sections import binary_section, section_bytes
from mailsrv.imap.tokens import SectionSpec
from mailsrv.message.content_fields import parse_content_type
from mailsrv.message.structure import MimePart, parse_message
from tests.unit.mime_corpus import NAMES, raw, wire


def _shape(part: MimePart) -> tuple[object, ...]:
    kids = [_shape(c) for c in part.children]
    inner = _shape(part.message) if part.message is not None else None
    return (part.mime_type, kids, inner)


def test_alternative_inside_mixed():
    root = parse_message(wire("alt_in_mixed"))
    assert _shape(root) == (
        "multipart/mixed",
        [
            ("multipart/alternative", [("text/plain", [], None), ("text/html", [], None)], None),
            ("application/pdf", [], None),
        ],
        None,
    )
    pdf = root.children[1]
    assert pdf.content_id == b"<part2@example.com>"
    assert pdf.description == b"The report"
    assert pdf.transfer_encoding == "base64"
    assert pdf.disposition == (b"attachment", ((b"filename", b"report.pdf"),))


def test_nested_rfc822():
    root = parse_message(wire("nested_rfc822"))
    assert root.message is not None and root.message.message is not None
    inner = root.message.message
    assert inner.mime_type == "multipart/alternative"
    assert len(inner.children) == 2


def test_offsets_cover_header_and_body():
    message = wire("rfc822_attachment")
    root = parse_message(message)
    assert root.header(message) + root.body(message) == message
    text = root.children[0]
    assert text.body(message) == b"See the forwarded message."
    assert text.lines == 0
    assert root.get("subject") == b" Fwd: lunch?"
    assert root.get("SUBJECT") == root.get("Subject")
    assert root.get_all("x-none") == []


def test_bare_lf_message_parses_like_its_crlf_form():
    lf = parse_message(raw("bare_lf"))
    crlf = parse_message(wire("bare_lf"))
    assert _shape(lf) == _shape(crlf)
    assert [p.lines for p in lf.walk()] == [p.lines for p in crlf.walk()]
    assert lf.children[0].body(raw("bare_lf")) == b"line one\nline two"


def test_missing_final_boundary_keeps_last_part():
    message = wire("missing_final_boundary")
    root = parse_message(message)
    assert [c.body(message) for c in root.children] == [
        b"first part",
        b"second part, never closed\r\n",
    ]


def test_multipart_without_boundary_has_one_empty_text_part():
    root = parse_message(wire("no_boundary_param"))
    assert root.is_multipart
    assert [(c.mime_type, c.body_size) for c in root.children] == [("text/plain", 0)]


def test_header_only_and_empty_body():
    message = wire("header_only")
    root = parse_message(message)
    assert not root.header_ended and root.body_size == 0
    assert root.header(message) == message
    message = wire("empty_body")
    root = parse_message(message)
    assert root.header_ended and root.body_size == 0


def test_digest_default_type_and_case_kept():
    root = parse_message(wire("broken_headers"))
    digest = root.children[4]
    assert digest.mime_type == "multipart/digest"
    assert digest.children[0].mime_type == "message/rfc822"
    assert digest.children[0].defaulted
    assert parse_content_type(b"TEXT/Plain; CharSet=x")[:2] == (b"TEXT", b"Plain")


def test_huge_header_is_fine():
    message = b"Subject: " + b"x" * 200_000 + b"\r\n" + b"X-A: b\r\n" * 5000 + b"\r\nbody"
    root = parse_message(message)
    assert len(root.fields) == 5001
    assert root.body(message) == b"body"


def test_large_base64_attachment_is_fast_enough():
    line = b"QUJD" * 19 + b"\r\n"
    message = (
        b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + line * 100_000 + b"--z--\r\n"
    )
    root = parse_message(message)
    assert root.children[0].lines == 99_999


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parse_never_raises_on_arbitrary_bytes(data):
    root = parse_message(data)
    body_structure(root, extended=True)
    for part in root.walk():
        assert 0 <= part.start <= part.body_start <= part.end <= len(data)
    section_bytes(root, data, SectionSpec((1,)))


_pieces = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=a\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: text/plain\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"\r\n",
        b"--a\r\n",
        b"--a--\r\n",
        b"text\r\n",
        b"From: x@y\r\n",
        b"\n",
        b" folded\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=40))
def test_parse_never_raises_on_mime_like_input(pieces):
    data = b"".join(pieces)
    root = parse_message(data)
    body_structure(root, extended=True)
    try:
        binary_section(root, data, ())
    except ValueError:
        pass


def test_corpus_all_parse():
    for name in NAMES:
        assert parse_message(wire(name)).end == len(wire(name))
