import re

import pytest

from mailsrv.imap.sections import binary_section, binary_size, section_bytes
from mailsrv.imap.tokens import SectionSpec
from mailsrv.message.part_numbers import find_part
from mailsrv.message.structure import parse_message
from mailsrv.message.transfer_encoding import UnknownTransferEncoding
from tests.unit.mime_corpus import NAMES, golden, wire

_ITEM = re.compile(r"(BODY\.PEEK|BINARY\.PEEK|BINARY\.SIZE)\[(.*)\]$")
_SECTION = re.compile(
    r"^([0-9.]*?)\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?(?: \((.*)\))?$"
)


def _spec(text: str) -> SectionSpec:
    m = _SECTION.match(text)
    assert m is not None
    nums, kind, fields = m.groups()
    part = tuple(int(x) for x in nums.split(".") if x) if nums else ()
    names = tuple(x.upper() for x in fields.split()) if fields else ()
    return SectionSpec(part, kind or "", names)  # type: ignore[arg-type]


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


@pytest.mark.parametrize("name", NAMES)
def test_sections_match_dovecot(name):
    message = wire(name)
    root = parse_message(message)
    checked = 0
    for key, expected in golden(name).items():
        m = _ITEM.match(key)
        if m is None:
            continue
        kind, section = m.groups()
        spec = _spec(section)
        try:
            if kind == "BODY.PEEK":
                got = section_bytes(root, message, spec)
                # Dovecot answers a section that does not exist with an empty string.
                ours = _literal(b"" if got is None else got)
            elif kind == "BINARY.PEEK":
                ours = _literal(binary_section(root, message, spec.part))
                expected = expected.removeprefix(b"~")  # literal8 marker: the session's job
            else:
                ours = b"%d" % binary_size(root, message, spec.part)
        except UnknownTransferEncoding:
            assert expected.startswith(b"!NO [UNKNOWN-CTE]"), key
        else:
            assert ours == expected, key
        checked += 1
    assert checked == 78


def test_missing_sections_are_none():
    root = parse_message(wire("qp_body"))
    message = wire("qp_body")
    assert section_bytes(root, message, SectionSpec((2,))) is None
    assert section_bytes(root, message, SectionSpec((1, 1))) is None
    assert section_bytes(root, message, SectionSpec((1,), "HEADER")) is None
    assert find_part(root, (0,)) is None


def test_whole_header_text_and_body():
    message = wire("rfc822_attachment")
    root = parse_message(message)
    assert section_bytes(root, message, SectionSpec()) == message
    header = section_bytes(root, message, SectionSpec((), "HEADER"))
    text = section_bytes(root, message, SectionSpec((), "TEXT"))
    assert header is not None and text is not None
    assert header + text == message
    assert header.endswith(b"\r\n\r\n")


def test_header_fields_keep_order_folding_and_case_insensitive():
    message = wire("base64_attachment")
    root = parse_message(message)
    got = section_bytes(root, message, SectionSpec((), "HEADER.FIELDS", ("CONTENT-TYPE", "TO")))
    assert got == (
        b"To: bob@example.org\r\n"
        b'Content-Type: multipart/mixed;\r\n boundary="----=_Part_0_123.456"\r\n\r\n'
    )


def test_rfc822_part_header_and_nested_mime():
    message = wire("rfc822_attachment")
    root = parse_message(message)
    header = section_bytes(root, message, SectionSpec((2,), "HEADER.FIELDS", ("SUBJECT",)))
    assert header == b"Subject: lunch?\r\n\r\n"
    assert section_bytes(root, message, SectionSpec((2,), "TEXT")) == (
        b"Shall we have lunch?\r\nTomorrow at noon."
    )


def test_binary_decodes_qp_and_base64():
    message = wire("qp_body")
    root = parse_message(message)
    assert binary_section(root, message, (1,)).startswith(b"Merci pour votre commande au caf\xe9")
    message = wire("base64_attachment")
    root = parse_message(message)
    assert binary_section(root, message, (2,)).startswith(b"\x89PNG\r\n")
    assert binary_size(root, message, (2,)) == 70


def test_binary_of_whole_message_rewrites_encoding_field():
    message = wire("base64_text")
    root = parse_message(message)
    whole = binary_section(root, message, ())
    assert b"Content-Transfer-Encoding: binary\r\n" in whole
    assert whole.endswith(b"\r\n\r\nCaf\xc3\xa9 au lait.\n")


def test_binary_unknown_encoding_raises():
    message = wire("unknown_cte")
    root = parse_message(message)
    with pytest.raises(UnknownTransferEncoding):
        binary_section(root, message, (1,))


def test_binary_missing_part_is_empty():
    message = wire("qp_body")
    assert binary_section(parse_message(message), message, (3,)) == b""
