"""Content-* field values: RFC 2231 parameters, languages, locations (message/content_fields.py)."""

from mailsrv.message.content_fields import decode_param
from mailsrv.message.structure import parse_message
from tests.unit.mime_corpus import wire


def test_rfc2231_decoding():
    root = parse_message(wire("base64_attachment"))
    png = root.children[1]
    assert decode_param(png.params, "name") == "a very long file name.png"
    assert png.disposition is not None
    assert decode_param(png.disposition[1], "filename") == "café photo.png"
    assert png.language == (b"en", b"fr")
    assert png.location == b"http://example.com/pic.png"
