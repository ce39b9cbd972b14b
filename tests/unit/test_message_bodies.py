"""Part numbers and what a reader shows (message/part_numbers.py, message/bodies.py)."""

from mailsrv.message import bodies
from mailsrv.message.part_numbers import find_part, leaf_parts, part_name
from mailsrv.message.structure import parse_message
from tests.unit.mime_corpus import NAMES, wire

RELATED = (
    b'Content-Type: multipart/related; boundary="r"; start="<second@x>"\r\n\r\n'
    b"--r\r\nContent-Type: text/html\r\nContent-ID: <first@x>\r\n\r\n<p>first</p>\r\n"
    b"--r\r\nContent-Type: text/html\r\nContent-ID: <second@x>\r\n\r\n<p>second</p>\r\n"
    b"--r--\r\n"
)


def test_every_leaf_number_names_that_leaf() -> None:
    for name in NAMES:
        root = parse_message(wire(name))
        for number, part in leaf_parts(root):
            assert find_part(root, number) is part, (name, number)


def test_single_part_message_is_its_own_part_1() -> None:
    root = parse_message(b"Content-Type: application/pdf\r\n\r\n%PDF\r\n")
    assert [(part_name(n), p is root) for n, p in leaf_parts(root)] == [("1", True)]
    assert bodies.find_body(root, "plain") is None
    assert [n for n, _ in bodies.attachments(root)] == [(1,)]


def test_attachment_disposition_keeps_a_text_part_out_of_the_body() -> None:
    data = (
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b"--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nfile\r\n"
        b"--m\r\nContent-Type: text/plain\r\n\r\nbody\r\n--m--\r\n"
    )
    root = parse_message(data)
    assert bodies.find_body(root, "plain") is root.children[1]
    assert [n for n, _ in bodies.attachments(root)] == [(1,)]


def test_related_shows_its_start_part() -> None:
    root = parse_message(RELATED)
    assert bodies.find_body(root, "html") is root.children[1]
    assert [n for n, _ in bodies.attachments(root)] == [(1,)]
    assert bodies.content_id(root.children[0]) == "first@x"


def test_names_come_from_disposition_then_type_and_are_decoded() -> None:
    data = b'Content-Type: application/octet-stream; name="=?utf-8?q?caf=C3=A9.bin?="\r\n\r\nx'
    assert bodies.filename(parse_message(data)) == "café.bin"
    data = (
        b"Content-Type: application/octet-stream; name=other\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''na%C3%AFve.txt\r\n\r\nx"
    )
    part = parse_message(data)
    assert bodies.filename(part) == "naïve.txt" and bodies.disposition(part) == "attachment"
    assert bodies.filename(parse_message(b"Content-Type: text/plain\r\n\r\nx")) is None
    assert bodies.content_type(parse_message(b"Content-Type: text\r\n\r\nx")) == "text/plain"
